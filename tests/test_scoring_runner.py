"""The scoring runner with a small evaluator defined here: pairing, invalid files, cache,
sharding, results files. (Real metrics are tested in their own test files.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from datagen import make_dataset, write_predictions

from evaluators.base import ClipOutput, Evaluator, MetricSpec
from evaluators.registry import EVALUATORS
from tas_bench.pipeline.scoring import ScoreOptions, parse_evaluator_options, score
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.results import read_results

CALLS: list[str] = []


class MeanSquareError(Evaluator):
    """Per-clip MSE plus a corpus metric (sum of squared errors / total samples)."""

    name = "test-mse"
    version = "0.1"
    metrics = (MetricSpec("mse", False, "", "mean squared error"),
               MetricSpec("total_mse", False, "", "pooled MSE", per_clip=False))
    batch_size = 3

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    def config(self) -> dict:
        return {"scale": self.scale, "sample_rate": self.sample_rate}

    def process_batch(self, batch):  # noqa: ANN001, ANN201
        out = []
        for b in batch:
            CALLS.append(b.clip.id)
            err = (b.pred - b.ref) ** 2
            out.append(ClipOutput({"mse": self.scale * float(err.mean())},
                                  {"sse": np.array([err.sum(), err.size], dtype=np.float64)}))
        return out

    def init_state(self) -> dict:
        return {"sse": np.zeros(2)}

    def update_state(self, state, clip_id, output) -> None:  # noqa: ANN001
        state["sse"] += output.arrays["sse"]

    def compute(self, state) -> dict:  # noqa: ANN001
        return {"total_mse": self.scale * state["sse"][0] / state["sse"][1]}


class NeedsWeights(MeanSquareError):
    name = "test-needs-weights"

    def check_requirements(self, dataset):  # noqa: ANN001, ANN201
        return "weights file X.pth missing"


if "test-mse" not in EVALUATORS:
    EVALUATORS.register("test-mse", MeanSquareError)
    EVALUATORS.register("test-needs-weights", NeedsWeights)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, list]:
    data, pred = tmp_path / "data", tmp_path / "pred"
    recs = make_dataset(data, n=5)
    write_predictions(pred, data, recs, mode="noisy")
    return data, pred, recs


def _opts(data: Path, pred: Path, out: Path | None, cache: Path, **kw) -> ScoreOptions:
    return ScoreOptions(data=data, pred=pred, out=out, evaluators=kw.pop("evaluators", ["test-mse"]),
                        cache_dir=cache, progress=False, **kw)


def test_results_files_and_cache(setup, tmp_path: Path) -> None:
    data, pred, recs = setup
    CALLS.clear()
    s1 = score(_opts(data, pred, tmp_path / "res", tmp_path / "cache"))
    assert s1.invalid == [] and s1.n_valid == 5 and len(CALLS) == 5
    doc = read_results(tmp_path / "res")
    m = doc["metrics"]["mse"]
    assert m["n"] == 5 and m["higher_is_better"] is False and len(m["ci95"]) == 2
    assert 0 < m["mean"] < 1e-3
    assert doc["dataset"]["split"] == "test" and len(doc["dataset"]["fingerprint"]) == 64
    assert doc["evaluators"]["test-mse"]["config"] == {"scale": 1.0, "sample_rate": 16000}
    assert doc["metrics"]["total_mse"]["per_clip"] is False
    per_clip = (tmp_path / "res" / "per_clip.csv").read_text().splitlines()
    assert per_clip[0] == "id,category,mse" and len(per_clip) == 6
    # rerun: everything from the cache, identical numbers
    CALLS.clear()
    s2 = score(_opts(data, pred, tmp_path / "res2", tmp_path / "cache"))
    assert CALLS == [] and s2.cache_hits == 6  # 5 clips + the corpus metrics
    assert read_results(tmp_path / "res2")["metrics"] == doc["metrics"]
    # a changed prediction is recomputed, never served stale
    write_predictions(pred, data, recs[:1], mode="copy")
    CALLS.clear()
    score(_opts(data, pred, tmp_path / "res3", tmp_path / "cache"))
    assert CALLS == [recs[0]["id"]]
    # a changed config is a different key too
    CALLS.clear()
    score(_opts(data, pred, tmp_path / "res4", tmp_path / "cache",
                evaluator_config={"test-mse": {"scale": 2.0}}))
    assert len(CALLS) == 5


def test_sharded_equals_unsharded(setup, tmp_path: Path) -> None:
    data, pred, _ = setup
    score(_opts(data, pred, tmp_path / "plain", tmp_path / "c1"))
    for i in range(2):
        s = score(_opts(data, pred, None, tmp_path / "c2", shard=(i, 2)))
        assert s.results_path is None
    CALLS.clear()
    score(_opts(data, pred, tmp_path / "sharded", tmp_path / "c2"))
    assert CALLS == []
    a = (tmp_path / "plain" / "per_clip.csv").read_bytes()
    assert a == (tmp_path / "sharded" / "per_clip.csv").read_bytes()
    ma = read_results(tmp_path / "plain")["metrics"]
    assert ma == read_results(tmp_path / "sharded")["metrics"]


def test_invalid_predictions_are_listed(setup, tmp_path: Path) -> None:
    import soundfile as sf

    data, pred, recs = setup
    (pred / f"{recs[0]['id']}.wav").unlink()                       # missing
    sf.write(pred / f"{recs[1]['id']}.wav", np.zeros((100, 1)), 16000)  # mono
    sf.write(pred / f"{recs[2]['id']}.wav", np.full((100, 2), np.nan), 16000, subtype="FLOAT")
    (pred / "notes.txt").write_text("hi")                          # non-audio
    sf.write(pred / "stranger.wav", np.zeros((100, 2)), 16000)     # extra clip id
    (pred / "link.wav").symlink_to(data / recs[3]["audio"])        # symlink
    s = score(_opts(data, pred, tmp_path / "res", tmp_path / "cache"))
    reasons = {Path(b["path"]).name: b["reason"] for b in s.invalid}
    assert reasons[f"{recs[0]['id']}.wav"] == "prediction missing"
    assert "channel" in reasons[f"{recs[1]['id']}.wav"]
    assert "NaN" in reasons[f"{recs[2]['id']}.wav"]
    assert "not a .wav" in reasons["notes.txt"]
    assert "no clip with this id" in reasons["stranger.wav"]
    assert "symbolic link" in reasons["link.wav"]
    doc = json.loads((tmp_path / "res" / "results.json").read_text())
    assert len(doc["invalid"]) == 6 and doc["metrics"]["mse"]["n"] == 2


def test_length_and_rate_policy(setup, tmp_path: Path) -> None:
    from tas_bench.runtime.audio_io import resample, write_wav

    data, pred, recs = setup
    x, _ = __import__("soundfile").read(str(data / recs[0]["audio"]), always_2d=True)
    write_wav(pred / f"{recs[0]['id']}.wav", resample(x.T, 16000, 22050), 22050, subtype="FLOAT")
    write_wav(pred / f"{recs[1]['id']}.wav", np.zeros((2, 8000)), 16000)
    s = score(_opts(data, pred, tmp_path / "res", tmp_path / "cache"))
    assert s.invalid == []
    doc = read_results(tmp_path / "res")
    assert any("prediction length" in w and recs[1]["id"] in w for w in doc["warnings"])
    assert any("all-silent" in w for w in doc["warnings"])
    assert doc["audio_policy"]["resampler"].startswith("scipy.signal.resample_poly")


def test_requirements_and_options(setup, tmp_path: Path) -> None:
    data, pred, _ = setup
    with pytest.raises(TasBenchError, match="cannot run: weights file X.pth missing"):
        score(_opts(data, pred, tmp_path / "r", tmp_path / "c", evaluators=["test-needs-weights"]))
    with pytest.raises(TasBenchError, match="unknown evaluator 'nope'"):
        score(_opts(data, pred, tmp_path / "r", tmp_path / "c", evaluators=["nope"]))
    with pytest.raises(TasBenchError, match="no clips in split 'val'"):
        score(_opts(data, pred, tmp_path / "r", tmp_path / "c", split="val"))
    assert parse_evaluator_options(["signal.normalize=false", "g.x=abc"]) == {
        "signal": {"normalize": False}, "g": {"x": "abc"}}
    with pytest.raises(TasBenchError, match="EVALUATOR.KEY=VALUE"):
        parse_evaluator_options(["normalize=false"])


def test_save_embeddings_writes_arrays_per_clip(setup, tmp_path: Path) -> None:
    data, pred, recs = setup
    score(_opts(data, pred, tmp_path / "res", tmp_path / "cache", save_embeddings=True))
    files = sorted((tmp_path / "res" / "embeddings" / "test-mse").glob("*.npz"))
    assert [f.stem for f in files] == [r["id"] for r in recs]
    with np.load(files[0], allow_pickle=False) as z:
        assert z["sse"].shape == (2,) and z["sse"][1] == 2 * 16000
