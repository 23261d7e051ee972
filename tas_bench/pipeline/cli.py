"""The ``tas-bench`` command line.

Each sub-command lives in ``tas_bench/pipeline/commands/<name>.py`` with a ``register(subparsers)``
function that adds its parser and sets ``func``. A :class:`TasBenchError` raised by a command is
printed as one line ``tas-bench: error: ...`` with exit status 2 (no traceback); a closed
standard output (``tas-bench ... | head``) ends with status 141 and a one-line note, no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Sequence

from tas_bench import __version__
from tas_bench.runtime.errors import TasBenchError

#: Command modules, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "simulate",
    "simulate_merge",
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
        module = importlib.import_module(f"tas_bench.pipeline.commands.{name}")
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
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
    except TasBenchError as exc:
        print(f"tas-bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tas-bench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _stdout_closed()
    return int(status or 0)


#: Exit status when stdout was closed early (``tas-bench score ... | head``): the shell's
#: status for a process killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141


def _stdout_closed() -> int:
    """The reader of stdout went away (Python's documented recipe): point stdout at /dev/null
    so the interpreter's final flush cannot fail again, say so on stderr, exit non-zero. Files
    are written before anything is printed, so the work itself is complete."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # stdout is not a file descriptor (tests capture it)
    try:
        print("tas-bench: standard output closed early; output not shown", file=sys.stderr)
    except OSError:
        pass
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
