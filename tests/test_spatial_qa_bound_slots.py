"""Class-bound source slots (projector option ``bound_slots``) and ``init_encoder``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from qa_tiny import make_qa_dataset, train_tiny

from evaluators.spatial_qa.assessor import ProjectorConfig
from evaluators.spatial_qa.projector import (
    BOUND_GEOMETRY,
    BoundSourceSlots,
    QFormerProjector,
    bound_geometry,
)
from tas_bench.runtime.errors import TasBenchError


def _heads(cls: list[float], words: list[list[float]], dist_bins: list[int]) -> dict[str, Any]:
    k = len(cls)
    dist = torch.full((1, k, 21), -1e4)
    for i, b in enumerate(dist_bins):
        dist[0, i, b] = 0.0
    return {"cls": torch.tensor([cls]), "bound_dir": torch.tensor([words]), "bound_dist": dist}


def test_bound_geometry_reads_words_and_expected_distance() -> None:
    h = _heads([0.0, 0.0], [[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], [4, 10])
    g = bound_geometry(h)
    assert g.shape == (1, 2, BOUND_GEOMETRY)
    assert torch.allclose(g[0, 0], torch.tensor([1.0, -2.0, 3.0, 0.2]))  # bin 4 = 2 m = 0.2 x 10 m
    assert torch.allclose(g[0, 1], torch.tensor([0.5, 0.0, -1.0, 0.5]))  # bin 10 = 5 m


def test_bound_slots_pick_the_two_likeliest_classes_in_index_order() -> None:
    torch.manual_seed(0)
    m = BoundSourceSlots(n_classes=4, llm_width=8)
    for p in m.mlp.parameters():  # slots = LayerNorm(class embedding) only
        torch.nn.init.zeros_(p)
    h = _heads([-3.0, 2.0, -5.0, 4.0], [[0.0] * 3] * 4, [0] * 4)
    out = m(h)
    assert out.shape == (1, 2, 8)
    assert torch.allclose(out[0], m.norm(m.label(torch.tensor([1, 3]))))


def test_bound_slots_carry_the_difference_to_the_other_source() -> None:
    """What the MLP reads: own geometry, own minus the other's, own and other's presence."""
    m = BoundSourceSlots(n_classes=3, llm_width=4)
    seen: list[torch.Tensor] = []
    m.mlp.register_forward_hook(lambda mod, inp, out: seen.append(inp[0]))
    h = _heads([5.0, -9.0, 5.0], [[2.0, 0.0, 1.0], [9.0, 9.0, 9.0], [-1.0, 3.0, 1.0]], [2, 0, 6])
    m(h)
    f = seen[0][0]  # (2 slots, 2 * 4 + 2)
    assert torch.allclose(f[0, :4], torch.tensor([2.0, 0.0, 1.0, 0.1]))
    assert torch.allclose(f[0, 4:8], torch.tensor([3.0, -3.0, 0.0, -0.2]))
    assert torch.allclose(f[1, 4:8], -f[0, 4:8])
    p = torch.sigmoid(torch.tensor(5.0))
    assert torch.allclose(f[:, 8:], torch.stack([p, p]).expand(2, 2))


def test_projector_with_bound_slots_needs_the_heads() -> None:
    proj = QFormerProjector(16, 8, n_queries=3, n_layers=1, heads=2, bound_classes=4)
    tokens = torch.randn(2, 5, 16)
    with pytest.raises(ValueError, match="class-bound heads"):
        proj(tokens)
    h = {"cls": torch.randn(2, 4), "bound_dir": torch.randn(2, 4, 3),
         "bound_dist": torch.randn(2, 4, 21)}
    assert proj(tokens, h).shape == (2, 5, 8)
    assert QFormerProjector(16, 8, 3, 1, 2)(tokens).shape == (2, 3, 8)


def test_projector_config_keeps_old_hashes() -> None:
    assert ProjectorConfig().to_dict() == {"n_queries": 8, "n_layers": 1, "heads": 4}
    assert ProjectorConfig(bound_slots=True).to_dict()["bound_slots"] is True


def _relabel(root: Path, label: str, every: int = 1) -> Path:
    """Rename the source of every ``every``-th clip of a tiny QA dataset to ``label``."""
    lines = (root / "manifest.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in lines]
    for r in recs[::every]:
        r["sources"][0]["label"] = label
        r["prompt"] = r["prompt"].replace("noise", label)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten one-source clips, two labels (noise, bell): two bound source slots."""
    return _relabel(make_qa_dataset(tmp_path_factory.mktemp("qa-bound"), n=10), "bell", every=2)


BOUND = {"bound_weight": 1.0,
         "projector": {"n_queries": 2, "n_layers": 1, "heads": 2, "bound_slots": True}}


def test_bound_slots_need_bound_heads(data: Path, tmp_path: Path) -> None:
    with pytest.raises(TasBenchError, match="bound_slots"):
        train_tiny(data, tmp_path / "r", projector=BOUND["projector"])


def test_init_encoder_starts_from_a_trained_encoder(data: Path, tmp_path: Path) -> None:
    """A QA-only run from another run's encoder: with the encoder frozen its weights stay the
    source's; the source is recorded by sha256, and the run answers through its bound slots."""
    from safetensors.torch import load_file

    from evaluators.spatial_qa.assessor import load_assessor_run

    train_tiny(data, tmp_path / "pre", qa_steps=0, bound_weight=1.0)
    train_tiny(data, tmp_path / "qa", pretrain_steps=0, qa_train_encoder=False,
               init_encoder=str(tmp_path / "pre"), **BOUND)
    pre = load_file(str(tmp_path / "pre" / "model.safetensors"))
    qa = load_file(str(tmp_path / "qa" / "model.safetensors"))
    enc = [k for k in pre if k.startswith("encoder.")]
    assert enc and all(torch.equal(pre[k], qa[k]) for k in enc)
    assert any(k.startswith("projector.bound.") for k in qa)
    src = json.loads((tmp_path / "qa" / "config.json").read_text())["init_encoder"]
    assert src["source"] == str(tmp_path / "pre") and len(src["sha256"]) == 64
    loaded = load_assessor_run(tmp_path / "qa")
    assert loaded.structure["projector"]["bound_slots"] is True
    wav = torch.randn(2, 2, 16000)
    assert loaded.model.audio_embeddings(wav).shape[1] == 2 + 2
    assert len(loaded.model.answer(wav, ["In which direction is the dog?"] * 2,
                                   max_new_tokens=3)) == 2


def test_init_encoder_refusals(data: Path, tmp_path: Path) -> None:
    train_tiny(data, tmp_path / "pre", qa_steps=0, bound_weight=1.0)
    with pytest.raises(TasBenchError, match="no assessor named"):
        train_tiny(data, tmp_path / "a", init_encoder=str(tmp_path / "missing"))
    with pytest.raises(TasBenchError, match="encoder config"):  # no class-bound heads here
        train_tiny(data, tmp_path / "b", pretrain_steps=0, init_encoder=str(tmp_path / "pre"))
    other = _relabel(make_qa_dataset(tmp_path / "other", n=6), "dog", every=2)
    with pytest.raises(TasBenchError, match="class labels"):
        train_tiny(other, tmp_path / "c", pretrain_steps=0, bound_weight=1.0,
                   init_encoder=str(tmp_path / "pre"))


def test_pair_relation_examples_add_what_the_category_lacks() -> None:
    """A double_doa_de clip gets Direction and Distance items, a relative_direction clip the
    Distance ones, a relative_distance clip the Direction ones; a one-source clip none, a pair
    too close on every axis only "how far apart"; every answer is what the geometry gives;
    seeded."""
    from types import SimpleNamespace

    from datagen import src

    from evaluators.spatial_qa.data import pair_relation_examples
    from tas_bench.data.manifest import QAItem
    from tas_bench.data.qa import check_qa

    dog, bell = src("dog", 60.0, 30.0, 2.0), src("bell", 300.0, -30.0, 6.0)  # left/right, 4 m apart
    near = src("bell", 61.0, 30.0, 2.05)
    clips = [SimpleNamespace(category="double_doa_de", sources=[dog, bell]),
             SimpleNamespace(category="relative_direction", sources=[dog, bell]),
             SimpleNamespace(category="relative_distance", sources=[dog, bell]),
             SimpleNamespace(category="single_doa_de", sources=[dog]),
             SimpleNamespace(category="double_doa_de", sources=[dog, near])]
    ex = pair_relation_examples(clips, seed=0)
    by_clip: dict[int, set[str]] = {}
    for e in ex:
        by_clip.setdefault(e.clip, set()).add(e.category)
        assert check_qa(QAItem(e.question, e.answer, e.category, e.question_type),
                        clips[e.clip].sources) == []
    assert by_clip == {0: {"Direction", "Distance"}, 1: {"Distance"}, 2: {"Direction"},
                       4: {"Distance"}}
    assert {e.question_type for e in ex if e.clip == 4} == {"MIXUP_NONBINARY_DISTANCE"}
    assert ex == pair_relation_examples(clips, seed=0)
    assert resolve_assessor_config({"qa_every_pair": True})["qa_every_pair"] is True
    with pytest.raises(TasBenchError, match="qa_every_pair"):
        resolve_assessor_config({"qa_every_pair": "yes"})


def resolve_assessor_config(over: dict[str, Any]) -> dict[str, Any]:
    from evaluators.spatial_qa.train import resolve_assessor_config as resolve

    return resolve(over)
