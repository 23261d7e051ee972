"""``tas-bench register NAME RUN``: make a trained run folder a named system (or assessor)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("register", help="register a trained run as a named system or assessor")
    p.add_argument("name", help="name (lower-case letters, digits, . _ -)")
    p.add_argument("run", help="run folder written by `tas-bench train`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from baselines.registry import SYSTEMS
    from tas_bench.pipeline.commands.train import _load_plugin_kinds
    from tas_bench.runtime import runs
    from tas_bench.runtime.errors import TasBenchError

    _load_plugin_kinds()
    try:
        kind = runs.run_kind(args.run)
    except TasBenchError:  # register_run below reports the folder's problem
        kind = None
    role = runs.get_kind(kind).role if kind in runs.KINDS else None
    reserved = SYSTEMS.names() if role in (None, "system") else ()
    rec = runs.register_run(args.name, args.run, reserved=reserved)
    print(f"registered {rec['name']} ({rec['kind']} {rec['role']}, revision "
          f"{rec['card'].get('revision')}) -> {rec['run']}")
    return 0
