"""Package a finished run of any trainable kind as a shipped folder (how ``pseudobinaural-demo``,
the ``tas-*-demo`` systems and the ``spatial-qa-demo`` assessor were made).

``python -m tas_bench.runtime.ship RUN DEST --name NAME --data-command "..." [--eval REPORT.json]``
copies the run's files (``model.safetensors``, ``config.json``, ``run.json``, any file or folder
the kind writes beside the weights such as TAS's ``tas_config.json`` or the assessor's
``llm/``; not ``data.json``, not ``checkpoints/``) and the metrics log (as ``train_log.csv``)
into DEST, loads DEST with its kind's loader and writes ``card.json``: the kind's card plus the
exact data and training commands, the seed, the git commit and the training-data fingerprint,
and optionally the evaluation report(s).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import TMP_MARK, write_json_atomic
from tas_bench.runtime.runs import (
    CHECKPOINTS_DIR,
    DATA_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RUN_FILE,
    load_run,
    read_json,
)

#: Largest shipped folder the package may hold (bytes), weights and everything else together.
MAX_SHIPPED_BYTES = 50 * 2**20


def _size(p: Path) -> int:
    return p.stat().st_size if p.is_file() else sum(q.stat().st_size for q in p.rglob("*")
                                                     if q.is_file())


def ship(run: str | Path, dest: str | Path, name: str, data_command: str,
         evaluation: dict[str, Any] | None = None, notes: str | None = None,
         max_bytes: int = MAX_SHIPPED_BYTES) -> dict[str, Any]:
    """Copy the run's files into ``dest`` and write its card; returns the card."""
    run, dest = Path(run), Path(dest)
    rec = read_json(run / RUN_FILE, "run record")
    if not (run / MODEL_FILE).is_file():
        raise TasBenchError("no model.safetensors: the run has not finished", path=run)
    items = [p for p in sorted(run.iterdir())
             if p.name not in (DATA_FILE, METRICS_FILE, CHECKPOINTS_DIR)
             and TMP_MARK not in p.name and not p.name.startswith(".")]
    total = sum(_size(p) for p in items)
    if total > max_bytes:
        raise TasBenchError(f"the run's files take {total / 2**20:.1f} MB, more than the "
                            f"{max_bytes / 2**20:.0f} MB a shipped folder may", path=run)
    dest.mkdir(parents=True, exist_ok=True)
    for p in items:
        if p.is_dir():
            shutil.rmtree(dest / p.name, ignore_errors=True)
            shutil.copytree(p, dest / p.name)
        else:
            shutil.copyfile(p, dest / p.name)
    shutil.copyfile(run / METRICS_FILE, dest / "train_log.csv")
    import importlib

    for mod in ("baselines.registry", "evaluators.registry"):  # the kinds load_run dispatches on
        importlib.import_module(mod)
    card = load_run(dest, name=name).card()
    card.update({
        "data_command": data_command,
        "command": rec.get("command"),
        "seed": rec.get("seed"),
        "git_commit": rec.get("git_commit"),
        "torch": rec.get("torch"),
        "data_fingerprint": rec.get("data_fingerprint"),
        "training_log": "train_log.csv",
    })
    if notes:
        card["notes"] = notes
    if evaluation is not None:
        card["evaluation"] = evaluation
    write_json_atomic(dest / "card.json", card)
    return card


def ship_parser(description: str) -> argparse.ArgumentParser:
    """The command line every shipper shares: RUN DEST --name --data-command [--eval] [--notes];
    a kind's shipper adds its own options to it."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("run")
    ap.add_argument("dest")
    ap.add_argument("--name", required=True)
    ap.add_argument("--data-command", required=True)
    ap.add_argument("--eval", default=None, help="JSON report(s) to embed, comma-separated")
    ap.add_argument("--notes", default=None)
    return ap


def read_evaluation(spec: str | None) -> dict[str, Any] | None:
    """``--eval a.json,b.json`` -> ``{"a": <a.json>, "b": <b.json>}`` (None without it)."""
    if not spec:
        return None
    return {Path(p).stem: json.loads(Path(p).read_text()) for p in spec.split(",")}


def main(argv: list[str] | None = None, max_bytes: int = MAX_SHIPPED_BYTES) -> int:
    a = ship_parser(__doc__.splitlines()[0]).parse_args(argv)
    card = ship(a.run, a.dest, a.name, a.data_command, read_evaluation(a.eval), a.notes, max_bytes)
    print(json.dumps({k: card.get(k) for k in ("name", "revision", "parameters")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
