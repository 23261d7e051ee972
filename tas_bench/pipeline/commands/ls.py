"""``tas-bench ls {evaluators,systems}``: list registered plugins, the broken ones included.

Every registration is listed: one that cannot be used (an entry point or lazy ``module:attr``
that fails to import, an object that is not a plugin, a registered system record that is
malformed or whose run folder is gone) appears as ``NAME  BROKEN: reason``, and an entry point
that was not registered because its name is taken appears as ``NAME  IGNORED: ...``. The exit
status is 0 when everything listed can be used and 1 when something is broken (the whole list
is still printed; a summary goes to stderr), so a script or CI job notices a broken plugin.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tas_bench.runtime.registry import Registry, one_line

_EPILOG = ("Broken registrations (a plugin that fails to import, a malformed registered-system "
           "record) are listed as BROKEN with the reason; entry points whose name is already "
           "taken are listed as IGNORED. Exit status: 0 if every listed plugin can be used, 1 "
           "if any is broken.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ls", help="list registered evaluators or systems (broken ones too)",
                       description="List the registered evaluators or systems.", epilog=_EPILOG)
    p.add_argument("what", choices=["evaluators", "systems"])
    p.set_defaults(func=run)


def _broken(name: str, reason: str) -> str:
    return f"{name}  BROKEN: {reason}"


def _ignored_lines(reg: Registry) -> list[str]:
    return [f"{e.name}  IGNORED: {e.origin}: {e.reason}" for e in reg.ignored()]


def _evaluator_lines() -> tuple[list[str], list[str]]:
    from evaluators.registry import EVALUATORS

    lines, broken = [], []
    for name, cls, err in EVALUATORS.resolve_all():
        if err is None:
            try:
                metrics = ", ".join(m.name for m in cls.metrics)
                lines.append(f"{name} (v{cls.version}, {cls.sample_rate} Hz): {metrics}")
                continue
            except Exception as exc:  # noqa: BLE001 - a third-party object of the wrong shape
                err = (f"evaluator {name!r} ({EVALUATORS.origin(name)}) is not an evaluator "
                       f"class ({one_line(exc)})")
        broken.append(name)
        lines.append(_broken(name, err))
    return lines + _ignored_lines(EVALUATORS), broken


def _card_line(card: dict[str, Any]) -> str:
    rev = str(card.get("revision") or "")[:12]
    params = card.get("parameters")
    extra = f", {params:,} parameters" if isinstance(params, int) else ""
    return f"{card['name']} (revision {rev or '-'}{extra}): {card.get('description', '')}"


def _system_lines() -> tuple[list[str], list[str]]:
    from baselines.registry import system_listing

    lines, broken = [], []
    for e in system_listing():
        if e["status"] == "ok":
            lines.append(_card_line(e["card"]))
        elif e["status"] == "ignored":
            lines.append(f"{e['name']}  IGNORED: {e['reason']}")
        else:
            broken.append(e["name"])
            lines.append(_broken(e["name"], e["reason"]))
    return lines, broken


def run(args: argparse.Namespace) -> int:
    lines, broken = _evaluator_lines() if args.what == "evaluators" else _system_lines()
    for line in lines:
        print(line)
    if broken:
        sys.stdout.flush()
        print(f"tas-bench ls: {len(broken)} broken {args.what[:-1]} registration"
              f"{'s' if len(broken) != 1 else ''}: {', '.join(broken)}", file=sys.stderr)
        return 1
    return 0
