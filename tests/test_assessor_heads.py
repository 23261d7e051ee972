"""benchmarks/assessor_heads.py: the one-source heads' words by hand, and a run through the
script on a tiny assessor and tiny data; an unknown assessor is refused with one message."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from datagen import make_dataset
from qa_tiny import make_qa_dataset, train_tiny
from scriptload import load_benchmark


def _onehot(n: int, idx: list[int]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(idx), n).float()


def test_one_source_words_by_hand() -> None:
    mod = load_benchmark("assessor_heads")
    heads = {"az": _onehot(360, [45, 200]), "el": _onehot(180, [110, 60]),
             "dist": _onehot(21, [4, 10])}  # 45 deg: left, front; 200 deg: right, behind
    src = [SimpleNamespace(direction=["left", "front", "above"], distance=2.0),
           SimpleNamespace(direction=["right", "front", "below"], distance=6.0)]
    clips = [SimpleNamespace(sources=[s]) for s in src]
    r = mod.one_source_words(heads, clips)
    assert r == pytest.approx({"left": 1.0, "front": 0.5, "above": 1.0, "words": 0.5,
                               "dist_within_0.5": 0.5})


def test_assessor_heads_script(tmp_path: Path, capsys) -> None:
    mod = load_benchmark("assessor_heads")
    train_tiny(make_qa_dataset(tmp_path / "train"), tmp_path / "run")
    make_dataset(tmp_path / "test", n=4, seconds=0.5, split="test")
    args = ["--assessor", str(tmp_path / "run"), "--data", str(tmp_path / "test")]
    assert mod.main([*args, "--out", str(tmp_path / "a.json")]) == 0
    a = json.loads((tmp_path / "a.json").read_text())
    split = a["splits"][0]
    assert (split["one_source_clips"], split["two_source_clips"]) == (4, 0)
    assert 0.0 <= split["one_source_heads"]["words"] <= 1.0
    assert a["assessor"]["sha256"] == json.loads((tmp_path / "run" / "run.json").read_text())[
        "checkpoint_sha256"]
    capsys.readouterr()
    assert mod.main(["--assessor", str(tmp_path / "nowhere"), *args[2:],
                     "--out", str(tmp_path / "b.json")]) == 2
    assert "error:" in capsys.readouterr().err and not (tmp_path / "b.json").exists()


def test_bound_relations_by_hand() -> None:
    """Relational items answered from the class-bound heads: dog (class 0) left logit 2,
    bell (class 1) -1, so the dog is to the left; distances 2 m and 5 m, so the dog is
    closer; a label outside the vocabulary and a "how far apart" item are skipped."""
    from tas_bench.data.manifest import QAItem

    mod = load_benchmark("assessor_heads")
    dist = torch.full((1, 2, 21), -1e4)
    dist[0, 0, 4] = dist[0, 1, 10] = 0.0
    heads = {"bound_dir": torch.tensor([[[2.0, 0.5, 0.0], [-1.0, 1.0, 0.0]]]), "bound_dist": dist}
    qa = [QAItem("Is the dog to the left of the bell?", "Yes", "Direction", "MIXUP_DIRECTION"),
          QAItem("Is the sound of bell to the left of the sound of dog?", "Yes", "Direction",
                 "MIXUP_DIRECTION"),  # wrong reading: the bell is to the right
          QAItem("Which sound is further to the front, the dog or the bell?", "bell", "Direction",
                 "MIXUP_NONBINARY_DIRECTION"),
          QAItem("Which sound is closer to the listener, the bell or the dog?", "dog", "Distance",
                 "MIXUP_NONBINARY_DISTANCE"),
          QAItem("Is the dog farther from the listener than the bell?", "Yes", "Distance",
                 "MIXUP_DISTANCE_BOTH"),  # wrong: the dog is closer
          QAItem("How far apart are the dog and the bell?", "3m", "Distance",
                 "MIXUP_NONBINARY_DISTANCE"),
          QAItem("Is the cat to the left of the bell?", "Yes", "Direction", "MIXUP_DIRECTION")]
    r = mod.bound_relations(heads, [SimpleNamespace(qa=qa)], ["dog", "bell"])
    assert r["Direction"] == {"accuracy": pytest.approx(2 / 3), "items": 3}
    assert r["Distance"] == {"accuracy": 0.5, "items": 2}
    assert r["axis_E"] == {"accuracy": 0.5, "items": 2} and r["axis_D"]["accuracy"] == 1.0
    assert r["skipped"] == 2
