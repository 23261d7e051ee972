"""The spatial-QA assessor's pieces: encoder shapes, LLM loading (scratch and LoRA), decoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.spatial_qa.assessor import PROMPT, SpatialQAAssessor
from evaluators.spatial_qa.encoder import (
    N_AZIMUTH,
    N_DISTANCE,
    N_ELEVATION,
    SpatialAudioEncoder,
    encoder_config,
    geometry_targets,
    loudness_normalize,
    pretraining_loss,
)
from evaluators.spatial_qa.llm import (
    LORA,
    ScratchLLMConfig,
    check_tokenizer_matches,
    llm_fingerprint,
    load_llm,
    new_scratch_llm,
    train_qa_tokenizer,
)
from evaluators.spatial_qa.projector import QFormerProjector
from tas_bench.runtime.errors import TasBenchError

QUESTIONS = ["In which direction is the dog?", "How far away is the bell?",
             "Is the dog to the left of the bell?"]
ANSWERS = ["left, front, above", "3.5m", "Yes"]


def test_paper_encoder_has_512_patches_and_3_cls() -> None:
    cfg = encoder_config("paper")
    assert (cfg.dim, cfg.depth, cfg.heads, cfg.frames) == (768, 12, 12, 1024)
    assert cfg.n_patches == 512
    torch.manual_seed(0)
    enc = SpatialAudioEncoder(cfg).eval()
    with torch.no_grad():
        tokens = enc(torch.randn(1, 2, 32000))
        heads = enc.heads(tokens)
    assert tokens.shape == (1, 515, 768)
    assert heads["dist"].shape == (1, N_DISTANCE) and heads["az"].shape == (1, N_AZIMUTH)
    assert heads["el"].shape == (1, N_ELEVATION) and heads["cls"].shape == (1, 355)


def test_front_end_features_shape_and_ipd_sign() -> None:
    enc = SpatialAudioEncoder(encoder_config("cpu")).eval()
    t = np.arange(32000) / 32000
    left = np.sin(2 * np.pi * 500 * t)
    right = np.roll(left, 8)  # right ear lags: IPD = angle R - angle L < 0 at 500 Hz
    x = torch.tensor(np.stack([left, right])[None], dtype=torch.float32)
    with torch.no_grad():
        feats = enc.front(x)
    assert feats.shape == (1, 4, 256, 128)
    band = int(np.argmax(enc.front.mel[:, 16].numpy()))  # mel band holding the 500 Hz bin
    assert float(feats[0, 3, 10:-10, band].mean()) < 0  # sin(IPD) negative


def test_clip_level_cues_hand_computed() -> None:
    """The lr4lt stem's clip-level maps: right = left / 2 gives ILD = ln 4 nats and coherence 1
    in every band with energy; a silent clip gives 0 and 0; independent noise in the two ears
    has a low coherence; the maps are constant over the frames."""
    enc = SpatialAudioEncoder(encoder_config("cpu", stem="lr4lt")).eval()
    assert enc.front.channels == 6
    rng = np.random.default_rng(0)
    left = rng.standard_normal(32000) * 0.1
    x = torch.tensor(np.stack([np.stack([left, left / 2]),
                               np.zeros((2, 32000)),
                               rng.standard_normal((2, 32000)) * 0.1]), dtype=torch.float32)
    with torch.no_grad():
        raw = enc.front.raw(x)
        tokens = enc.forward_features(raw)
    assert raw.shape == (3, 6, 256, 128) and tokens.shape == (3, 3 + 128, 128)
    assert torch.equal(raw[:, 4:, :1].expand(-1, -1, 256, -1), raw[:, 4:])
    assert torch.allclose(raw[0, 4, 0], torch.full((128,), float(np.log(4.0))), atol=1e-3)
    assert torch.allclose(raw[0, 5, 0], torch.ones(128), atol=1e-3)
    assert not raw[1, 4:].any()
    assert float(raw[2, 5, 0].mean()) < 0.2


def test_cue_cls_needs_the_clip_level_stem_and_keeps_old_hashes() -> None:
    """``cue_cls`` is refused without the clip-level maps; configs without the new flags keep
    the dict (and so the model hash) they had before the flags existed; with it the CLS
    tokens depend on the clip-level cues."""
    with pytest.raises(TasBenchError, match="encoder.cue_cls"):
        encoder_config("cpu", cue_cls=True)
    assert "cue_cls" not in encoder_config("cpu").to_dict()
    assert "bound_heads" not in encoder_config("cpu").to_dict()
    assert encoder_config("cpu", stem="lr4lt", cue_cls=True).to_dict()["cue_cls"] is True
    torch.manual_seed(0)
    enc = SpatialAudioEncoder(encoder_config("cpu", stem="lr4lt", cue_cls=True)).eval()
    raw = enc.front.raw(torch.randn(1, 2, 16000) * 0.1)
    shifted = raw.clone()
    shifted[:, 4] += 1.0  # another clip-level ILD, the same per-frame maps
    with torch.no_grad():
        a, b = enc.forward_features(raw), enc.forward_features(shifted)
    assert a.shape == (1, 3 + 128, 128)
    assert not torch.allclose(a[:, :3], b[:, :3])


def test_loudness_normalisation_to_minus_14_dbfs() -> None:
    x = np.random.default_rng(0).standard_normal((2, 1000)) * 0.3
    y = loudness_normalize(x)
    assert 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2))) == pytest.approx(-14, abs=1e-4)
    assert not loudness_normalize(np.zeros((2, 10))).any()


def test_geometry_targets_bins() -> None:
    assert geometry_targets(0.0, 0.0, 0.0) == (0, 90, 0)
    assert geometry_targets(359.7, -90.0, 10.0) == (359, 0, 20)
    assert geometry_targets(-90.0, 89.9, 2.74) == (270, 179, 5)
    assert geometry_targets(45.0, 10.0, 99.0)[2] == N_DISTANCE - 1


def test_pretraining_loss_uses_published_weights() -> None:
    logits = {"dist": torch.zeros(2, N_DISTANCE), "az": torch.zeros(2, N_AZIMUTH),
              "el": torch.zeros(2, N_ELEVATION), "cls": torch.zeros(2, 4)}
    idx = torch.zeros(2, dtype=torch.long)
    total, parts = pretraining_loss(logits, idx, idx, idx, torch.zeros(2, 4))
    expected = 1250 * np.log(2) + np.log(N_DISTANCE) + 2 * (np.log(N_AZIMUTH) + np.log(N_ELEVATION))
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert parts["cls"] == pytest.approx(np.log(2), rel=1e-6)


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("llm")
    texts = [PROMPT.format(question=q) for q in QUESTIONS] + ANSWERS + ["right, behind, below"]
    torch.manual_seed(0)
    tok = train_qa_tokenizer(texts, d, vocab_size=300)
    new_scratch_llm(tok, ScratchLLMConfig(vocab=300, hidden=64, intermediate=128), d)
    return d


def _assessor(llm_dir: Path, lora: bool) -> SpatialQAAssessor:
    torch.manual_seed(1)
    model, tok = load_llm(llm_dir, lora=lora)
    enc = SpatialAudioEncoder(encoder_config("cpu", frames=64, dim=64, depth=1, heads=2))
    width = model.get_input_embeddings().weight.shape[1]
    return SpatialQAAssessor(enc, QFormerProjector(64, width, 4, 1, 2), model, tok)


def test_lora_attaches_and_only_lora_projector_encoder_train(llm_dir: Path) -> None:
    a = _assessor(llm_dir, lora=True)
    trainable = {n for n, p in a.named_parameters() if p.requires_grad}
    llm_trainable = {n for n in trainable if n.startswith("llm.")}
    assert llm_trainable and all("lora_" in n for n in llm_trainable)
    assert all(any(t in n for t in LORA["target_modules"]) for n in llm_trainable)
    assert any(n.startswith("encoder.") for n in trainable)
    assert any(n.startswith("projector.") for n in trainable)
    loss = a.loss(torch.randn(3, 2, 8000), QUESTIONS, ANSWERS)
    loss.backward()
    assert all(p.grad is None for n, p in a.named_parameters() if n.startswith("llm.")
               and "lora_" not in n)


def test_scratch_llm_trains_every_parameter(llm_dir: Path) -> None:
    a = _assessor(llm_dir, lora=False)
    assert all(p.requires_grad for p in a.llm.parameters())


def test_loss_counts_answer_and_eos_only(llm_dir: Path) -> None:
    """Changing the question changes the loss; the loss equals the mean CE over answer+eos
    tokens computed by hand from the logits."""
    a = _assessor(llm_dir, lora=False).eval()
    x = torch.randn(1, 2, 8000)
    with torch.no_grad():
        loss = float(a.loss(x, QUESTIONS[:1], ANSWERS[:1]))
        slots = a.audio_embeddings(x)
        p, ans = a._prompt_ids(QUESTIONS[0]), a._answer_ids(ANSWERS[0])
        emb = torch.cat([slots[0], a._embed(torch.tensor(p + ans))])[None]
        logits = a.llm(inputs_embeds=emb).logits[0]
        start = slots.shape[1] + len(p)
        logp = torch.log_softmax(logits[start - 1: start - 1 + len(ans)], -1)
        manual = -float(logp[torch.arange(len(ans)), torch.tensor(ans)].mean())
    assert loss == pytest.approx(manual, rel=1e-5)
    assert ans[-1] == a.tokenizer.eos_token_id


def test_batched_decoding_is_batch_invariant_and_equals_generate(llm_dir: Path) -> None:
    a = _assessor(llm_dir, lora=False).eval()
    x = torch.randn(3, 2, 8000)
    batched = a.answer(x, QUESTIONS, max_new_tokens=6)
    alone = [a.answer(x[i: i + 1], [q], max_new_tokens=6)[0] for i, q in enumerate(QUESTIONS)]
    assert batched == alone
    assert batched == a.answer_one_by_one(x, QUESTIONS, max_new_tokens=6)


def test_decoding_bounded_length(llm_dir: Path) -> None:
    a = _assessor(llm_dir, lora=False).eval()
    with torch.no_grad():
        slots = a.audio_embeddings(torch.randn(2, 2, 8000))
    for n in (1, 3):
        _, ids = a.answer_from_slots(slots, QUESTIONS[:2], max_new_tokens=n, return_ids=True)
        assert all(len(row) <= n for row in ids)


def test_incomplete_or_missing_llm_folder(tmp_path: Path, llm_dir: Path) -> None:
    with pytest.raises(TasBenchError, match="not a folder"):
        load_llm(tmp_path / "nope", lora=True)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text((llm_dir / "config.json").read_text())
    with pytest.raises(TasBenchError, match="incomplete LLM folder.*safetensors"):
        load_llm(tmp_path / "half", lora=True)


def test_tokenizer_that_does_not_match_the_llm(tmp_path: Path, llm_dir: Path) -> None:
    model, _ = load_llm(llm_dir, lora=False)
    big = train_qa_tokenizer([f"word{i} other{i}" for i in range(400)], tmp_path / "big",
                             vocab_size=600)
    with pytest.raises(TasBenchError, match="do not match"):
        check_tokenizer_matches(big, model, tmp_path / "big")


def test_llm_fingerprint_tracks_content(tmp_path: Path, llm_dir: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(llm_dir, copy)
    assert llm_fingerprint(copy) == llm_fingerprint(llm_dir)
    cfg = copy / "config.json"
    cfg.write_text(cfg.read_text() + " ")
    assert llm_fingerprint(copy) != llm_fingerprint(llm_dir)

