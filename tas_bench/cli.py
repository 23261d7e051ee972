"""The ``tas-bench`` command line.

Each sub-command lives in ``tas_bench/commands/<name>.py`` with a ``register(subparsers)``
function that adds its parser and sets ``func``. A :class:`TasBenchError` raised by a command is
printed as one line ``tas-bench: error: ...`` with exit status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tas_bench import __version__
from tas_bench.errors import TasBenchError

#: Command modules, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "simulate",
    "validate",
    "import_data",
    "score",
    "weights",
    "ls",
    "train",
    "register",
    "generate",
    "spatialize",
    "leaderboard",
    "reproduce",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="tas-bench",
        description="Benchmark suite for text-guided audio spatialization.",
    )
    parser.add_argument("--version", action="version", version=f"tas-bench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"tas_bench.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        status = args.func(args)
    except TasBenchError as exc:
        print(f"tas-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tas-bench: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
