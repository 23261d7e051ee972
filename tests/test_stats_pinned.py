"""The documented statistics, pinned: 95 % percentile-bootstrap CI of the mean from 2000
resamples drawn with numpy ``default_rng(0)`` (README "Results"), in ``summarize``, in every
results file, and the leaderboard's paired bootstrap (B = 2000, seed 0, alpha 0.05).

The reference here is written out resample by resample, with the percentile interpolated by
hand, so a 90 % interval, 1000 resamples or another seed cannot pass.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from datagen import make_dataset, write_predictions

from evaluators.base import ClipOutput, Evaluator, MetricSpec
from evaluators.registry import EVALUATORS
from leaderboard.significance import BootstrapConfig, paired_bootstrap
from tas_bench.pipeline.scoring import ScoreOptions, score
from tas_bench.runtime.stats import summarize


def _percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), written out."""
    h = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (h - lo) * (sorted_values[hi] - sorted_values[lo])


def hand_bootstrap_ci(values: list[float], level: float = 95.0, resamples: int = 2000,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap of the mean: ``resamples`` draws of n indices with replacement,
    one resample after another from one ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    n = len(values)
    means = []
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        means.append(sum(values[i] for i in idx) / n)
    means.sort()
    tail = (100.0 - level) / 2.0
    return _percentile(means, tail), _percentile(means, 100.0 - tail)


VALUES = [0.3, 1.7, 0.2, 2.9, 0.8, 1.1, 4.0, 0.05, 2.2]


def test_summarize_is_the_95_percent_bootstrap_of_2000_resamples_seed_0() -> None:
    s = summarize(np.array(VALUES))
    want = hand_bootstrap_ci(VALUES)
    assert s["n"] == len(VALUES)
    assert s["mean"] == pytest.approx(sum(VALUES) / len(VALUES), rel=1e-15)
    m = sum(VALUES) / len(VALUES)
    assert s["std"] == pytest.approx(math.sqrt(sum((v - m) ** 2 for v in VALUES) / (len(VALUES) - 1)),
                                     rel=1e-14)
    assert s["ci95"] == pytest.approx(list(want), rel=1e-12, abs=1e-14)
    # the pin discriminates: each of these settings gives a different interval
    for other in (hand_bootstrap_ci(VALUES, level=90.0), hand_bootstrap_ci(VALUES, resamples=1000),
                  hand_bootstrap_ci(VALUES, seed=1), hand_bootstrap_ci(VALUES, level=99.0)):
        assert abs(other[0] - want[0]) + abs(other[1] - want[1]) > 1e-6


def test_summarize_large_n_uses_the_same_stream() -> None:
    # 1500 clips: the index matrix is drawn in chunks; the draws must stay one stream
    v = np.random.default_rng(3).exponential(size=1500)
    s = summarize(v)
    want = hand_bootstrap_ci(v.tolist())
    assert s["ci95"] == pytest.approx(list(want), rel=1e-10)


def test_undefined_values_are_left_out() -> None:
    v = VALUES + [float("nan"), float("inf")]
    s = summarize(np.array(v))
    assert s["n"] == len(VALUES)
    assert s["ci95"] == pytest.approx(list(hand_bootstrap_ci(VALUES)), rel=1e-12, abs=1e-14)


# --------------------------------------------------------------------------- results files


class ClipLevel(Evaluator):
    """Per clip: the prediction's mean absolute sample value (any number will do)."""

    name = "test-stats-level"
    version = "0.1"
    metrics = (MetricSpec("level", False, "", "mean |x|"),)
    batch_size = 4

    def config(self) -> dict:
        return {"sample_rate": self.sample_rate}

    def process_batch(self, batch):  # noqa: ANN001, ANN201
        return [ClipOutput({"level": float(np.abs(b.pred).mean())}) for b in batch]


if "test-stats-level" not in EVALUATORS:
    EVALUATORS.register("test-stats-level", ClipLevel)


def test_results_file_records_and_uses_the_pinned_bootstrap(tmp_path: Path) -> None:
    data, pred = tmp_path / "data", tmp_path / "pred"
    recs = make_dataset(data, n=7)
    write_predictions(pred, data, recs, mode="noisy")
    score(ScoreOptions(data=data, pred=pred, out=tmp_path / "res", evaluators=["test-stats-level"],
                       cache_dir=tmp_path / "cache", progress=False))
    doc = json.loads((tmp_path / "res" / "results.json").read_text())
    assert doc["bootstrap"]["resamples"] == 2000 and doc["bootstrap"]["seed"] == 0
    assert "95" in doc["bootstrap"]["interval"] and "percentile" in doc["bootstrap"]["interval"]
    with open(tmp_path / "res" / "per_clip.csv", newline="") as f:
        per_clip = [float(r["level"]) for r in csv.DictReader(f)]
    assert len(per_clip) == 7
    m = doc["metrics"]["level"]
    assert m["n"] == 7
    assert m["ci95"] == pytest.approx(list(hand_bootstrap_ci(per_clip)), rel=1e-9)
    assert m["ci95"] != pytest.approx(list(hand_bootstrap_ci(per_clip, level=90.0)), rel=1e-9)


# --------------------------------------------------------------------------- leaderboard test


def hand_paired_p(a: list[float], b: list[float], resamples: int = 2000, seed: int = 0) -> float:
    """Share of resampled mean differences (a - b, higher is better) that are <= 0."""
    rng = np.random.default_rng(seed)
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    wrong = 0
    for _ in range(resamples):
        idx = rng.integers(0, n, size=n)
        wrong += sum(d[i] for i in idx) / n <= 0.0
    return wrong / resamples


def test_paired_bootstrap_defaults_pinned() -> None:
    cfg = BootstrapConfig()
    assert (cfg.n_boot, cfg.seed, cfg.alpha) == (2000, 0, 0.05)
    assert "B = 2000" in cfg.describe() and "seed 0" in cfg.describe() and "p < 0.05" in cfg.describe()
    rng = np.random.default_rng(11)
    b = rng.normal(size=12)
    a = b + rng.normal(0.15, 0.5, size=12)
    ids = [f"c{i:02d}" for i in range(12)]
    r = paired_bootstrap(dict(zip(ids, a)), dict(zip(ids, b)), higher_is_better=True)
    want = hand_paired_p(a.tolist(), b.tolist())
    assert 0.0 < want < 1.0
    assert r.p_value == want
    assert r.p_value != hand_paired_p(a.tolist(), b.tolist(), resamples=1000)
    assert r.mean_diff == pytest.approx(float(np.mean(a - b)), rel=1e-12)
