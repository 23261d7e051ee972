"""Helpers that write small fake results folders for the leaderboard tests (no tests here)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from tas_bench.runtime.fileio import sha256_file
from tas_bench.runtime.results import folder_files

FP_DEMO = "d" * 64
FP_OTHER = "e" * 64
SKIP_GEN = ("PANNs weights not installed: Cnn14_16k_mAP=0.438.pth missing in the weights store "
            "(run tas-bench weights download panns)")
HIB = {"stft": False, "env": False, "wav": False, "snr": True, "itd_error_us": False,
       "ild_error_db": False, "lr_correct": True, "kl": False, "fd": False, "fad": False,
       "is": True, "itd_pred_us": False, "itd_ref_us": False}
EVAL_OF = {"stft": "signal", "env": "signal", "wav": "signal", "snr": "signal",
           "itd_error_us": "cues", "ild_error_db": "cues", "lr_correct": "cues",
           "itd_pred_us": "cues", "itd_ref_us": "cues", "kl": "generation", "fd": "generation",
           "fad": "generation", "is": "generation"}


def evaluator(version: str = "1.0", config_hash: str = "c" * 64, weights: dict | None = None) -> dict:
    return {"version": version, "config": {}, "config_hash": config_hash, "weights": weights or {}}


def write_result(root: Path, folder: str, *, system: str, per_clip: dict[str, list[float]],
                 corpus: dict[str, float] | None = None, fingerprint: str = FP_DEMO,
                 dataset_name: str = "demo", split: str = "test", evaluators: dict | None = None,
                 skipped: dict | None = None, ids: list[str] | None = None,
                 dataset_path: str | None = None, predictions_path: str | None = None,
                 overrides: dict[str, Any] | None = None) -> Path:
    """Write RES/results.json + per_clip.csv like `tas-bench score` does; means and CIs are
    computed from the per-clip values (CI = mean ± 1.96 std/√n, good enough for a fixture)."""
    d = root / folder
    d.mkdir(parents=True, exist_ok=True)
    n = len(next(iter(per_clip.values()))) if per_clip else 0
    ids = ids or [f"clip{i:03d}" for i in range(n)]
    metrics: dict[str, Any] = {}
    for name, vals in per_clip.items():
        a = np.asarray(vals, dtype=float)
        half = 1.96 * float(a.std(ddof=1)) / np.sqrt(len(a))
        metrics[name] = {"evaluator": EVAL_OF.get(name, "signal"), "mean": float(a.mean()),
                         "std": float(a.std(ddof=1)), "ci95": [float(a.mean()) - half, float(a.mean()) + half],
                         "n": len(a), "higher_is_better": HIB.get(name, False),
                         "unit": "us" if name.endswith("_us") else "", "per_clip": True}
    for name, v in (corpus or {}).items():
        metrics[name] = {"evaluator": EVAL_OF.get(name, "generation"), "mean": v, "std": None,
                         "ci95": None, "n": n, "higher_is_better": HIB.get(name, False), "unit": "",
                         "per_clip": False}
    evs = evaluators if evaluators is not None else {"signal": evaluator(), "cues": evaluator()}
    doc = {
        "schema_version": "1.1", "kind": "tas-bench-results", "complete": True,
        "created_utc": "2026-11-26T03:00:00Z",
        "code": {"tas_bench_version": "0.1.0", "git_commit": "abc1234def5678", "git_dirty": False},
        "system": {"name": system, "revision": "r" * 64},
        "dataset": {"path": dataset_path or "/nonexistent/dataset", "name": dataset_name,
                    "fingerprint": fingerprint, "split": split, "n_clips": n},
        "predictions": {"path": predictions_path or "/nonexistent/pred", "n_files": n},
        "audio_policy": {"resampler": "x", "length_policy": "crop-or-pad"},
        "evaluators": evs, "skipped": skipped or {}, "metrics": metrics, "invalid": [],
        "warnings": [], "packages": {"numpy": np.__version__},
        "paths": {"per_clip": "per_clip.csv"}, "some_future_key": {"ignored": True},
    }
    doc.update(overrides or {})
    with open(d / "per_clip.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["id", "category", *per_clip])
        for i, cid in enumerate(ids):
            w.writerow([cid, "single_doa_de", *[repr(float(per_clip[m][i])) for m in per_clip]])
    if doc.get("schema_version") == "1.1" and "files" not in doc:  # as the writer records them
        doc["files"] = {n: sha256_file(d / n) for n in folder_files(d)}
    (d / "results.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return d


def refresh_files(d: Path) -> None:
    """Re-record the sha256 of the folder's files in its results.json, as if the run that wrote
    results.json had written the files as they are now (for tests that edit per_clip.csv)."""
    doc = json.loads((d / "results.json").read_text(encoding="utf-8"))
    doc["files"] = {n: sha256_file(d / n) for n in folder_files(d)}
    (d / "results.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")


def signal_values(rng: np.random.Generator, n: int, stft: float, snr: float, itd: float) -> dict[str, list[float]]:
    """Per-clip signal and cue metrics around the given levels."""
    ref_itd = rng.uniform(-600, 600, n)
    return {
        "stft": list(stft + 0.05 * rng.standard_normal(n)),
        "env": list(0.13 + 0.01 * rng.standard_normal(n)),
        "wav": list(6.0 + 0.3 * rng.standard_normal(n)),
        "snr": list(snr + 0.4 * rng.standard_normal(n)),
        "itd_error_us": list(np.abs(itd + 30 * rng.standard_normal(n))),
        "lr_correct": list((rng.uniform(size=n) < 0.5 + itd / 2000).astype(float)),
        "itd_pred_us": list(ref_itd + itd * rng.standard_normal(n)),
        "itd_ref_us": list(ref_itd),
    }


def small_board(root: Path) -> Path:
    """The golden fixture: 3 systems on `demo`, 1 on `other`, 1 on `demo` with another signal
    evaluator version; generation weights installed only for tas-demo."""
    rng = np.random.default_rng(1234)
    n = 24
    mono = signal_values(rng, n, 1.20, 5.7, 400)
    pseudo = signal_values(rng, n, 0.90, 6.9, 150)
    tas = signal_values(rng, n, 0.89, 7.0, 100)
    tas["kl"] = list(0.6 + 0.05 * rng.standard_normal(n))
    gen = evaluator(weights={"cnn14_16k": {"sha256": "9" * 64, "custom": False}})
    write_result(root, "mono-mono", system="mono-mono", per_clip=mono, skipped={"generation": SKIP_GEN})
    write_result(root, "pseudobinaural", system="pseudobinaural", per_clip=pseudo,
                 skipped={"generation": SKIP_GEN})
    write_result(root, "tas-demo", system="tas-demo", per_clip=tas,
                 corpus={"fd": 5.1234, "fad": 1.5, "is": 2.25},
                 evaluators={"signal": evaluator(), "cues": evaluator(), "generation": gen})
    write_result(root, "other/mono-mono", system="mono-mono", per_clip=signal_values(rng, 8, 1.1, 5.0, 300),
                 fingerprint=FP_OTHER, dataset_name="other", skipped={"generation": SKIP_GEN})
    write_result(root, "legacy", system="legacy-sys", per_clip=signal_values(rng, n, 1.0, 6.0, 200),
                 evaluators={"signal": evaluator(version="0.9"), "cues": evaluator()},
                 skipped={"generation": SKIP_GEN})
    return root
