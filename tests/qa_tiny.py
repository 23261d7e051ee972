"""A tiny dataset with QA items and a tiny assessor config, shared by the spatial-QA tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datagen import make_dataset

TINY: dict[str, Any] = {
    "pretrain_steps": 2, "qa_steps": 3, "batch_size": 2, "checkpoint_every": 2,
    "val_every": 2, "val_items": 4, "max_new_tokens": 4,
    "encoder_overrides": {"frames": 32, "dim": 32, "depth": 1, "heads": 2},
    "projector": {"n_queries": 2, "n_layers": 1, "heads": 2},
    "llm": {"hidden": 32, "layers": 1, "heads": 2, "intermediate": 64, "vocab": 300,
            "max_positions": 256}}


def make_qa_dataset(root: Path, n: int = 8, n_val: int = 2) -> Path:
    """``n`` one-source clips (the last ``n_val`` in the val split) with a DOA item each."""
    recs = make_dataset(root, n=n, seconds=0.5, split="train")
    for r in recs[n - n_val:]:
        r["split"] = "val"
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return root


def train_tiny(data: Path, out: Path, **over: Any) -> dict[str, Any]:
    from evaluators.spatial_qa.train import train_assessor_run

    return train_assessor_run("assessor", data, out, overrides={**TINY, **over}, progress=False,
                              command="test")
