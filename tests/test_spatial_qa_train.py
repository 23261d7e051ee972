"""`tas-bench train assessor`: the shared run folder, resume, load, register, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from qa_tiny import TINY, make_qa_dataset, train_tiny
from runkill import dies_after_first_checkpoint

from evaluators.spatial_qa.assessor import load_assessor_run
from evaluators.spatial_qa.train import resolve_assessor_config
from tas_bench.pipeline.cli import main
from tas_bench.runtime.errors import TasBenchError


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_qa_dataset(tmp_path_factory.mktemp("qa-data"))


def _train(data: Path, out: Path, **over: Any) -> dict[str, Any]:
    return train_tiny(data, out, **over)


def test_train_load_and_answer(tiny_data: Path, tmp_path: Path) -> None:
    rec = _train(tiny_data, tmp_path / "run")
    assert rec["kind"] == "assessor" and rec["steps"] == 5
    for f in ("config.json", "data.json", "run.json", "metrics.csv", "model.safetensors",
              "llm/model.safetensors", "llm/tokenizer.json"):
        assert (tmp_path / "run" / f).is_file(), f
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,stage,loss") and len(rows) == 6
    assert "pretrain" in rows[1] and "qa" in rows[-1]
    loaded = load_assessor_run(tmp_path / "run")
    card = loaded.card()
    assert card["kind"] == "assessor" and card["revision"] == rec["revision"]
    x = torch.randn(2, 2, 8000)
    answers = loaded.model.answer(x, ["Where is the sound?"] * 2, max_new_tokens=4)
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    with pytest.raises(TasBenchError, match="encoder preset 'cpu', not 'paper'"):
        load_assessor_run(tmp_path / "run", preset="paper")


@pytest.mark.parametrize("curriculum", [0, 2])
def test_resume_after_kill_gives_the_same_weights(tiny_data: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  curriculum: int) -> None:
    over = {"qa_curriculum": curriculum, "qa_curriculum_types": ["DOA"]} if curriculum else {}
    _train(tiny_data, tmp_path / "straight", **over)
    with dies_after_first_checkpoint(monkeypatch):
        _train(tiny_data, tmp_path / "killed", **over)
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    rec = _train(tiny_data, tmp_path / "killed", **over)
    assert rec["resumed_from"] == 2
    a = (tmp_path / "straight" / "model.safetensors").read_bytes()
    b = (tmp_path / "killed" / "model.safetensors").read_bytes()
    assert a == b
    assert (tmp_path / "straight" / "llm" / "model.safetensors").read_bytes() == \
        (tmp_path / "killed" / "llm" / "model.safetensors").read_bytes()
    assert (tmp_path / "straight" / "metrics.csv").read_text().count("\n") == \
        (tmp_path / "killed" / "metrics.csv").read_text().count("\n")


def test_refusals(tiny_data: Path, tmp_path: Path) -> None:
    with pytest.raises(TasBenchError, match="unknown assessor config field"):
        resolve_assessor_config({"nonsense": 1})
    with pytest.raises(TasBenchError, match="unknown preset"):
        resolve_assessor_config({"preset": "huge"})
    with pytest.raises(TasBenchError, match="does not take text_encoder"):
        resolve_assessor_config({"text_encoder": "t5"})
    with pytest.raises(TasBenchError, match="qa_steps"):
        resolve_assessor_config({"steps": -1})
    _train(tiny_data, tmp_path / "run")
    with pytest.raises(TasBenchError):  # another config into the same run folder
        _train(tiny_data, tmp_path / "run", lr=0.5)
    w = tmp_path / "run" / "llm" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(TasBenchError, match="scratch LLM"):
        load_assessor_run(tmp_path / "run")


def test_cli_train_register_and_score_loads_it(tiny_data: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TAS_BENCH_HOME", str(tmp_path / "home"))
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    assert main(["train", "assessor", "--data", str(tiny_data), "--out", str(tmp_path / "run"),
                 "--config", str(cfg), "--no-progress"]) == 0
    assert main(["register", "my-qa", str(tmp_path / "run")]) == 0
    from evaluators.spatial_qa.evaluator import SpatialQAEvaluator, resolve_assessor

    assert resolve_assessor("my-qa").resolve() == (tmp_path / "run").resolve()
    ev = SpatialQAEvaluator(assessor="my-qa")
    info = ev.weights_info()["assessor:my-qa"]
    assert info["sha256"] == json.loads((tmp_path / "run" / "run.json").read_text())["checkpoint_sha256"]


@pytest.mark.parametrize("long_term", [False, True])
def test_mirror_features_swap_the_ears(long_term: bool) -> None:
    """Mirroring the audio (L <-> R) equals mirroring its features (with the clip-level ILD
    and coherence maps too)."""
    from evaluators.spatial_qa.encoder import SpatialFrontEnd
    from evaluators.spatial_qa.train import mirror_features

    front = SpatialFrontEnd(32, long_term=long_term)
    x = torch.randn(2, 2, 4000)
    x[:, 1] = 0.3 * x[:, 1] + 0.5 * x[:, 0]  # correlated ears: ILD and coherence not trivial
    with torch.no_grad():
        a = mirror_features(front.raw(x))
        b = front.raw(x.flip(1))
    assert a.shape == b.shape == (2, 6 if long_term else 4, 32, 128)
    assert torch.allclose(a[:, :3], b[:, :3], atol=1e-5)
    assert torch.allclose(a[:, 3], b[:, 3], atol=1e-4)
    assert torch.allclose(a[:, 4:], b[:, 4:], atol=1e-4)


def test_ship_copies_the_llm_folder_and_writes_a_card(tiny_data: Path, tmp_path: Path) -> None:
    from tas_bench.runtime.ship import ship

    rec = _train(tiny_data, tmp_path / "run")
    card = ship(tmp_path / "run", tmp_path / "shipped", "tiny-qa", "tas-bench simulate ...")
    assert (tmp_path / "shipped" / "llm" / "model.safetensors").is_file()
    assert not (tmp_path / "shipped" / "checkpoints").exists()
    assert (tmp_path / "shipped" / "train_log.csv").read_text().startswith("step,stage,loss")
    assert card["revision"] == rec["revision"] and card["data_fingerprint"] == rec["data_fingerprint"]
    assert json.loads((tmp_path / "shipped" / "card.json").read_text())["name"] == "tiny-qa"
    loaded = load_assessor_run(tmp_path / "shipped")
    assert loaded.card()["revision"] == rec["revision"]
    with pytest.raises(TasBenchError, match="more than"):
        ship(tmp_path / "run", tmp_path / "too-big", "x", "cmd", max_bytes=10)


def test_frozen_encoder_is_untouched_by_the_qa_stage(tiny_data: Path, tmp_path: Path) -> None:
    """qa_train_encoder=false: the encoder after the QA stage equals the pretrained one, its
    BatchNorm running statistics included (the QA forward runs in eval mode, without a graph)."""
    from safetensors.torch import load_file

    _train(tiny_data, tmp_path / "pre", qa_steps=0, qa_train_encoder=False)
    _train(tiny_data, tmp_path / "qa", qa_train_encoder=False)
    pre = load_file(str(tmp_path / "pre" / "model.safetensors"))
    qa = load_file(str(tmp_path / "qa" / "model.safetensors"))
    enc = [k for k in pre if k.startswith("encoder.")]
    assert any("running_mean" in k for k in enc)
    assert all(torch.equal(pre[k], qa[k]) for k in enc), [k for k in enc if not torch.equal(pre[k], qa[k])]
    assert not all(torch.equal(pre[k], qa[k]) for k in pre if k.startswith("projector."))


def test_qa_curriculum_batches() -> None:
    """The first qa_curriculum QA steps draw only items that do not ask for the smaller value;
    without the curriculum the stream is the one the trainer drew before the option existed."""
    import numpy as np

    from evaluators.spatial_qa.data import QAExample
    from evaluators.spatial_qa.train import (
        AssessorTrainConfig,
        QABatches,
        _batches,
        curriculum_examples,
    )

    qs = [("MIXUP_DIRECTION", "Is the dog to the left of the bell?"),
          ("MIXUP_DIRECTION", "Is the dog to the right of the bell?"),
          ("MIXUP_NONBINARY_DIRECTION", "Which sound is higher, the dog or the bell?"),
          ("MIXUP_NONBINARY_DIRECTION", "Which sound is lower, the dog or the bell?"),
          ("DOA", "In which direction is the dog?"),
          ("MIXUP_NONBINARY_DISTANCE", "How far apart are the dog and the bell?")]
    ex = [QAExample(i, q, "Yes", "Direction", t) for i, (t, q) in enumerate(qs)]
    assert [e.clip for e in curriculum_examples(ex)] == [0, 2, 4, 5]
    b = QABatches(ex, AssessorTrainConfig(batch_size=2, qa_curriculum=5))
    early = [e.clip for s in range(5) for e in b(s)]
    assert set(early) <= {0, 2, 4, 5} and len(early) == 10
    late = {e.clip for s in range(5, 40) for e in b(s)}
    assert late == set(range(6))
    typed = QABatches(ex, AssessorTrainConfig(batch_size=2, qa_curriculum=4,
                                              qa_curriculum_types=["MIXUP_NONBINARY_DIRECTION"]))
    assert {e.clip for s in range(4) for e in typed(s)} == {2}
    with pytest.raises(TasBenchError, match="no training items"):
        QABatches(ex[4:], AssessorTrainConfig(qa_curriculum=2, qa_curriculum_types=["MIXUP_DIRECTION"]))
    plain = QABatches(ex, AssessorTrainConfig(batch_size=2))
    old = _batches(6, 2, np.random.default_rng([0, 2]))
    assert all([e.clip for e in plain(s)] == list(next(old)) for s in range(10))


def test_qa_curriculum_config() -> None:
    from evaluators.spatial_qa.train import AssessorTrainConfig

    assert "qa_curriculum" not in AssessorTrainConfig().to_dict()  # old runs keep their hash
    assert AssessorTrainConfig(qa_curriculum=7).to_dict()["qa_curriculum"] == 7
    assert resolve_assessor_config({"qa_curriculum": 3})["qa_curriculum"] == 3
    for bad in (-1, 1.5, True):
        with pytest.raises(TasBenchError, match="qa_curriculum"):
            resolve_assessor_config({"qa_curriculum": bad})
    assert "qa_curriculum_types" not in AssessorTrainConfig().to_dict()
    t = ["MIXUP_DIRECTION", "MIXUP_NONBINARY_DIRECTION"]
    assert resolve_assessor_config({"qa_curriculum_types": t})["qa_curriculum_types"] == t
    for bad_t in ("MIXUP_DIRECTION", ["LEFTNESS"], [1]):
        with pytest.raises(TasBenchError, match="qa_curriculum_types"):
            resolve_assessor_config({"qa_curriculum_types": bad_t})
