"""Package a finished run as a shipped checkpoint folder (how ``pseudobinaural-demo`` was made).

``python -m baselines.pseudobinaural.ship RUN DEST --data-command "..." [--eval REPORT.json]``
copies ``model.safetensors``, ``config.json``, ``run.json`` and the metrics log (as
``train_log.csv``) into DEST and writes ``card.json``: the system card plus the exact data and
training commands, the seed, the git commit and the training-data fingerprint, and optionally
the evaluation report written by :mod:`baselines.pseudobinaural.demo_eval`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from baselines.pseudobinaural.system import load_checkpoint_dir
from tas_bench.errors import TasBenchError
from tas_bench.fileio import write_json_atomic
from tas_bench.runs import CONFIG_FILE, METRICS_FILE, MODEL_FILE, RUN_FILE, read_json

#: Largest checkpoint the package may ship (bytes).
MAX_SHIPPED_BYTES = 25 * 2**20


def ship(run: str | Path, dest: str | Path, name: str, data_command: str,
         evaluation: dict[str, Any] | None = None, notes: str | None = None) -> dict[str, Any]:
    """Copy the run's files into ``dest`` and write its card; returns the card."""
    run, dest = Path(run), Path(dest)
    rec = read_json(run / RUN_FILE, "run record")
    if (run / MODEL_FILE).stat().st_size > MAX_SHIPPED_BYTES:
        raise TasBenchError("checkpoint larger than 25 MB; too big to ship", path=run / MODEL_FILE)
    dest.mkdir(parents=True, exist_ok=True)
    for src, dst in ((MODEL_FILE, MODEL_FILE), (CONFIG_FILE, CONFIG_FILE), (RUN_FILE, RUN_FILE),
                     (METRICS_FILE, "train_log.csv")):
        shutil.copyfile(run / src, dest / dst)
    card = load_checkpoint_dir(dest, name=name).card()
    card.update({
        "data_command": data_command,
        "command": rec.get("command"),
        "seed": rec.get("seed"),
        "git_commit": rec.get("git_commit"),
        "torch": rec.get("torch"),
        "training_log": "train_log.csv",
    })
    if notes:
        card["notes"] = notes
    if evaluation is not None:
        card["evaluation"] = evaluation
    write_json_atomic(dest / "card.json", card)
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("dest")
    ap.add_argument("--name", default="pseudobinaural-demo")
    ap.add_argument("--data-command", required=True)
    ap.add_argument("--eval", default=None, help="JSON report(s) to embed, comma-separated")
    ap.add_argument("--notes", default=None)
    a = ap.parse_args(argv)
    evaluation = None
    if a.eval:
        evaluation = {Path(p).stem: json.loads(Path(p).read_text()) for p in a.eval.split(",")}
    card = ship(a.run, a.dest, a.name, a.data_command, evaluation, a.notes)
    print(json.dumps({k: card[k] for k in ("name", "revision", "parameters")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
