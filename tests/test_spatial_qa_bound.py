"""Class-bound geometry heads of the spatial-QA encoder: targets, loss, mirror, training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from qa_tiny import make_qa_dataset, train_tiny

from evaluators.spatial_qa.data import geometry_labels
from evaluators.spatial_qa.encoder import (
    N_DISTANCE,
    SpatialAudioEncoder,
    bound_loss,
    encoder_config,
)
from evaluators.spatial_qa.train import (
    AssessorTrainConfig,
    pretraining_batch,
    resolve_assessor_config,
)
from tas_bench.data.manifest import Clip, Provenance, Source


def _src(label: str, az: float, el: float, d: float, words: str) -> Source:
    return Source(label, az, el, d, words.split(", "), Provenance("t", "f", "cc0"))


def _clip(*sources: Source) -> Clip:
    return Clip("c", "train", "a.wav", 16000, 1.0, "relative_direction", list(sources), "", None,
                [], None, None, None)


def test_bound_targets_name_each_source_by_its_class() -> None:
    clips = [_clip(_src("dog", 90, 10, 2.0, "left, front, above"),
                   _src("bell", 200, -20, 3.5, "right, behind, below")),
             _clip(_src("bell", 30, 0, 1.0, "left, front"))]  # horizontal: no above/below word
    g = geometry_labels(clips, ["bell", "cat", "dog"])
    assert g["present"].tolist() == [[True, False, True], [True, False, False]]
    assert g["words"][0, 2].tolist() == [1.0, 1.0, 1.0]   # dog: left, front, above
    assert g["words"][0, 0].tolist() == [0.0, 0.0, 0.0]   # bell: right, behind, below
    assert g["words"][1, 0].tolist() == [1.0, 1.0, 0.0]
    assert g["word_mask"][1, 0].tolist() == [True, True, False]
    assert not g["word_mask"][0, 1].any()                 # absent class: nothing to learn
    assert g["bound_dist"][0, 2] == 4 and g["bound_dist"][0, 0] == 7 and g["bound_dist"][1, 0] == 2


def test_bound_loss_at_zero_logits_is_log2_plus_log21_and_ignores_absent_classes() -> None:
    b, k = 2, 3
    logits = {"bound_dir": torch.zeros(b, k, 3), "bound_dist": torch.zeros(b, k, N_DISTANCE)}
    present = torch.tensor([[True, False, False], [False, False, True]])
    words = torch.ones(b, k, 3)
    mask = torch.ones(b, k, 3, dtype=torch.bool)
    total, parts = bound_loss(logits, present, words, mask, torch.zeros(b, k, dtype=torch.long))
    assert math.isclose(parts["bound_dir"], math.log(2), rel_tol=1e-6)
    assert math.isclose(parts["bound_dist"], math.log(N_DISTANCE), rel_tol=1e-6)
    # a huge wrong logit on an absent class changes nothing
    logits["bound_dir"][0, 1] = -50.0
    logits["bound_dist"][0, 1, 5] = 50.0
    total2, _ = bound_loss(logits, present, words, mask, torch.zeros(b, k, dtype=torch.long))
    assert torch.isclose(total, total2)


def test_mirror_flips_every_source_side_in_the_bound_targets() -> None:
    clips = [_clip(_src("dog", 90, 0, 2.0, "left, front, above"),
                   _src("bell", 270, 0, 3.0, "right, behind, above"))] * 16
    g = geometry_labels(clips, ["bell", "dog"])
    feats = torch.randn(16, 4, 16, 128)
    cfg = AssessorTrainConfig(mirror_augment=True, bound_weight=1.0)
    x, tgt = pretraining_batch(feats, g, np.arange(16), cfg, step=0)
    flipped = tgt["az"] != g["az"]
    assert 0 < int(flipped.sum()) < 16
    for i in range(16):
        want_dog_left = 0.0 if flipped[i] else 1.0
        assert tgt["words"][i, 1, 0] == want_dog_left and tgt["words"][i, 0, 0] == 1 - want_dog_left
        assert tgt["words"][i, 1, 1] == 1.0 and tgt["words"][i, 0, 1] == 0.0   # front/back kept
        assert torch.equal(x[i, 0], feats[i, 1] if flipped[i] else feats[i, 0])


def test_bound_heads_leave_old_structures_and_configs_unchanged() -> None:
    old = encoder_config("cpu", n_classes=5)
    assert "bound_heads" not in old.to_dict()
    assert "bound_weight" not in resolve_assessor_config({})
    assert resolve_assessor_config({"bound_weight": 2.0})["bound_weight"] == 2.0
    enc = SpatialAudioEncoder(encoder_config("cpu", n_classes=5, bound_heads=True,
                                             frames=32, dim=32, depth=1, heads=2))
    h = enc.heads(enc.forward_features(torch.randn(2, 4, 32, 128)))
    assert h["bound_dir"].shape == (2, 5, 3) and h["bound_dist"].shape == (2, 5, N_DISTANCE)


def test_training_with_bound_heads_trains_and_loads_back(tmp_path: Path) -> None:
    from evaluators.spatial_qa.assessor import load_assessor_run

    data = make_qa_dataset(tmp_path / "data")
    rec = train_tiny(data, tmp_path / "run", bound_weight=1.0)
    loaded = load_assessor_run(tmp_path / "run")
    assert loaded.model.encoder.config.bound_heads
    assert rec["revision"] == loaded.card()["revision"]
    plain = train_tiny(data, tmp_path / "plain")
    assert plain["model_hash"] != rec["model_hash"]


def test_bound_accuracy_hand_computed() -> None:
    from evaluators.spatial_qa.train import bound_accuracy

    clips = [_clip(_src("dog", 90, 10, 2.0, "left, front, above"),
                   _src("bell", 200, -20, 3.5, "right, behind, below"))]
    g = geometry_labels(clips, ["bell", "dog"])
    d = torch.full((1, 2, 3), -1.0)
    d[0, 1] = torch.tensor([1.0, 1.0, -1.0])      # dog: left, front right; "below" wrong
    dist = torch.zeros(1, 2, N_DISTANCE)
    dist[0, 1, 5] = 1.0                           # dog 2.5 m for 2.0: within 0.5 m
    dist[0, 0, 2] = 1.0                           # bell 1.0 m for 3.5: wrong
    acc = bound_accuracy({"bound_dir": d, "bound_dist": dist}, g)
    assert acc == {"left_right": 1.0, "front_back": 1.0, "up_down": 0.5, "words": 0.5,
                   "dist_within_0.5": 0.5}
