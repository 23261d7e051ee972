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
from pathlib import Path
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
    from baselines.registry import SYSTEMS, describe
    from tas_bench.runtime import systems_store
    from tas_bench.runtime.errors import TasBenchError

    lines, broken = [], []
    for name, _obj, err in SYSTEMS.resolve_all():
        if err is None:
            try:
                card = describe(name)
                if not isinstance(card, dict):
                    raise TypeError(f"its card is a {type(card).__name__}, not an object")
                lines.append(_card_line({**card, "name": name}))
                continue
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
                err = f"system {name!r} ({SYSTEMS.origin(name)}): cannot describe it ({one_line(exc)})"
        broken.append(name)
        lines.append(_broken(name, err))
    lines += _ignored_lines(SYSTEMS)
    folder = systems_store.systems_dir()
    records = sorted(folder.glob("*.json")) if folder.is_dir() else []
    for path in records:
        name = path.stem
        try:
            rec = systems_store.load_record(name)
            if rec is None:
                raise TasBenchError(f"{name!r} is not a valid system name (lower-case letters, "
                                    f"digits, . _ -), so the record is never used", path=path)
            if not isinstance(rec.get("card", {}), dict):
                raise TasBenchError("'card' is not an object", path=path)
        except TasBenchError as exc:
            broken.append(name)
            lines.append(_broken(name, f"registered system record {exc}"))
            continue
        if name in SYSTEMS:
            lines.append(f"{name}  IGNORED: registered system record {path}: the name is taken by "
                         f"a built-in or plugin system")
            continue
        run = Path(str(rec.get("run")))
        if not run.is_dir():
            broken.append(name)
            lines.append(_broken(name, f"registered system record {path}: its run folder {run} "
                                       f"does not exist"))
            continue
        lines.append(_card_line({**rec.get("card", {}), "name": name}))
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
