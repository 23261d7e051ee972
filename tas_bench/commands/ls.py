"""``tas-bench ls {evaluators,systems}``: list registered plugins."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ls", help="list registered evaluators or systems")
    p.add_argument("what", choices=["evaluators", "systems"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.what == "evaluators":
        from evaluators.registry import EVALUATORS

        for name in EVALUATORS.names():
            cls = EVALUATORS.get(name)
            metrics = ", ".join(m.name for m in cls.metrics)
            print(f"{name} (v{cls.version}, {cls.sample_rate} Hz): {metrics}")
        return 0
    from baselines.registry import list_systems

    for card in list_systems():
        rev = (card.get("revision") or "")[:12]
        params = card.get("parameters")
        extra = f", {params:,} parameters" if isinstance(params, int) else ""
        print(f"{card['name']} (revision {rev or '-'}{extra}): {card.get('description', '')}")
    return 0
