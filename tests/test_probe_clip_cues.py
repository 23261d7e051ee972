"""benchmarks/probe_clip_cues.py: the probe on hand-made separable cues, a run through the
script on tiny generated data (same report twice), and its refusal of data without one-source
clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from datagen import clip_record, make_dataset, write_manifest
from scriptload import load_benchmark


def _label(front: bool, dist: float) -> dict:
    return {"words": "left, front" if front else "left, behind", "left": True, "front": front,
            "above": None, "distance": dist}


def test_probe_separates_separable_cues() -> None:
    mod = load_benchmark("probe_clip_cues")
    rng = np.random.default_rng(0)
    ys = [_label(bool(i % 2), 1.0 + 2.0 * (i % 3)) for i in range(60)]
    x = rng.standard_normal((60, 6)) * 0.01
    x[:, 0] += [2.0 if y["front"] else -2.0 for y in ys]
    for k in range(3):  # one column per distance class
        x[:, 1 + k] += [2.0 * (y["distance"] == 1.0 + 2.0 * k) for y in ys]
    r = mod.probe(x[:40], ys[:40], x[40:], ys[40:])
    for target in ("words", "front", "distance"):
        for model in ("logistic", "mlp"):
            assert r[target][model]["accuracy"] == 1.0 and r[target][model]["n_test"] == 20
    # one class only (every source on the left; no vertical word): skipped with the reason
    assert r["left"]["mlp"]["accuracy"] is None and "two classes" in r["left"]["mlp"]["skipped"]
    assert r["above"]["logistic"]["n_test"] == 0


def test_probe_script_end_to_end(tmp_path: Path, capsys) -> None:
    mod = load_benchmark("probe_clip_cues")
    make_dataset(tmp_path / "train", n=8, seconds=0.5, split="train")
    make_dataset(tmp_path / "test", n=4, seconds=0.5, split="test")
    args = ["--train", str(tmp_path / "train"), "--test", str(tmp_path / "test")]
    assert mod.main([*args, "--out", str(tmp_path / "a.json")]) == 0
    assert mod.main([*args, "--out", str(tmp_path / "b.json")]) == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    a = json.loads((tmp_path / "a.json").read_text())
    assert a["train"]["one_source_clips"] == 8 and a["test"][0]["one_source_clips"] == 4
    # the tiny clips alternate left / right with a clear ILD: the side is read off the cues
    assert a["results"]["left"]["logistic"]["accuracy"] == 1.0
    assert a["results"]["front"]["mlp"]["skipped"]  # every tiny source is in front
    capsys.readouterr()
    recs = [clip_record("two", "test", "audio/test/clip000.wav", 16000, 0.5, 60.0)]
    recs[0]["sources"].append({**recs[0]["sources"][0], "label": "bell"})
    recs[0]["category"] = "double_doa_de"
    write_manifest(tmp_path / "test", recs)
    assert mod.main(["--train", str(tmp_path / "test"), "--test", str(tmp_path / "test"),
                     "--out", str(tmp_path / "c.json")]) == 2
    assert "no one-source clips" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()
