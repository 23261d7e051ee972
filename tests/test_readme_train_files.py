"""The README names the files a training run writes as the code writes them: the run's log is
``metrics.csv`` (``tas_bench.runtime.runs.METRICS_FILE``); ``train_log.csv`` is only the name the shipped
checkpoint folders give their copy of it (``baselines/pseudobinaural/ship.py``)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

from baselines.pseudobinaural.train import METRIC_FIELDS
from baselines.registry import SHIPPED
from baselines.tas.train import LATER_METRIC_FIELDS as TAS_LATER_FIELDS
from baselines.tas.train import METRIC_FIELDS as TAS_METRIC_FIELDS
from tas_bench.runtime.runs import CONFIG_FILE, METRICS_FILE, RUN_FILE

README = Path(__file__).resolve().parents[1] / "README.md"


def _sentences(text: str) -> list[str]:
    return [" ".join(s.split()) for s in re.split(r"(?<=[.;])\s+|\n\s*\n", text)]


def test_readme_names_the_files_training_writes() -> None:
    text = README.read_text(encoding="utf-8")
    (row,) = [ln for ln in text.splitlines() if ln.startswith("| train |")]
    for name in (METRICS_FILE, CONFIG_FILE, RUN_FILE):
        assert f"`{name}`" in row, (name, row)
    assert "train_log.csv" not in row
    # wherever the README says a run logs to a file, it is METRICS_FILE
    for s in _sentences(text):
        if "train_log.csv" in s:
            assert "shipped" in s and METRICS_FILE in s, s  # "shipped folders keep it as ..."
        if re.search(r"\blogs? to\b", s) and "RUN/" in s:
            assert f"RUN/{METRICS_FILE}" in s, s


def test_shipped_folders_carry_the_training_log_they_name() -> None:
    for name, folder in SHIPPED.items():
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        log = folder / card["training_log"]
        assert card["training_log"] == "train_log.csv" and log.is_file(), name
        with open(log, encoding="utf-8", newline="") as f:
            fields = TAS_METRIC_FIELDS if card["kind"].startswith("tas") else METRIC_FIELDS
            head = tuple(next(csv.reader(f)))
            later = TAS_LATER_FIELDS if card["kind"].startswith("tas") else ()
            # a copy of metrics.csv (logs shipped before a later column lack only that column)
            assert head == tuple(c for c in fields if c in head), name
            assert set(fields) - set(head) <= set(later), name
