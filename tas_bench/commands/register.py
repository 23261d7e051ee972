"""``tas-bench register NAME RUN``: make a trained run folder a named system."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("register", help="register a trained run as a named system")
    p.add_argument("name", help="system name (lower-case letters, digits, . _ -)")
    p.add_argument("run", help="run folder written by `tas-bench train`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from baselines.registry import register_run

    rec = register_run(args.name, args.run)
    print(f"registered {rec['name']} ({rec['kind']}, revision {rec['card']['revision']}) -> {rec['run']}")
    return 0
