"""The shared text encoders and tokenizer (``tas_bench.runtime.text``): hand cases, per-token outputs,
the local FLAN-T5 loader, and that no second copy exists."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.text import (
    PAD,
    UNK,
    ScratchTextEncoder,
    T5TextEncoder,
    build_text_encoder,
    build_vocab,
    check_text_encoder_meta,
    text_encoder_meta,
    token_ids,
    tokenize,
    vocab_from_meta,
)

ROOT = Path(__file__).resolve().parent.parent
WORDS = ["the", "dog", "is", "on", "left", "right", "behind", "front", "above", "2", "m", "away"]


def test_tokenize_and_vocab_hand_cases() -> None:
    assert tokenize("The Dog, 5.5m AWAY!") == ["the", "dog", "5.5", "m", "away"]
    assert tokenize("声音在左边") == [] and tokenize("") == []
    assert build_vocab(["b a", "a c", "a"]) == [PAD, UNK, "a", "b", "c"]
    assert build_vocab(["b a", "a c", "a"], min_count=2) == [PAD, UNK, "a"]


def test_token_ids_hand_case() -> None:
    index = {w: i for i, w in enumerate([PAD, UNK, "a", "b"])}
    ids, lengths = token_ids(["a b", "b zzz a a", "", "a"], index, max_tokens=3)
    assert ids.tolist() == [[2, 3, 0], [3, 1, 2], [0, 0, 0], [2, 0, 0]]
    assert lengths.tolist() == [2, 3, 0, 1]
    ids, lengths = token_ids(["", ""], index, max_tokens=3)
    assert ids.shape == (2, 1) and lengths.tolist() == [0, 0]


def _scratch(text_dim: int = 16) -> ScratchTextEncoder:
    torch.manual_seed(0)
    return ScratchTextEncoder([PAD, UNK, *WORDS], word_dim=8, text_dim=text_dim, max_tokens=6).eval()


def test_scratch_encode_tokens_mask_pooled() -> None:
    enc = _scratch()
    prompts = ["the dog is on the left", "right", "", "声音在左边"]
    with torch.no_grad():
        out = enc.encode(prompts)
        pooled = enc(prompts)
    assert enc.token_dim == 16
    assert out.tokens.shape == (4, 6, 16) and out.mask.shape == (4, 6) and out.pooled.shape == (4, 16)
    assert out.mask.tolist()[1] == [True] + [False] * 5
    assert not out.mask[2].any() and not out.mask[3].any()
    assert torch.all(out.tokens[~out.mask] == 0)
    torch.testing.assert_close(pooled, out.pooled, rtol=0, atol=0)
    null = torch.tanh(enc.null)
    torch.testing.assert_close(out.pooled[2], null) and torch.testing.assert_close(out.pooled[3], null)
    # parameter names are part of the checkpoint format
    assert set(enc.state_dict()) >= {"embed.weight", "out.weight", "out.bias", "null",
                                     "gru.weight_ih_l0", "gru.weight_ih_l0_reverse"}


@settings(max_examples=20, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORDS + ["zebra"]), max_size=8), min_size=1, max_size=5))
def test_scratch_encoding_of_a_prompt_ignores_its_batch(word_lists: list[list[str]]) -> None:
    enc = _scratch()
    prompts = [" ".join(w) for w in word_lists]
    with torch.no_grad():
        batch = enc.encode(prompts)
        for i, p in enumerate(prompts):
            alone = enc.encode([p])
            n = int(alone.mask.sum())
            torch.testing.assert_close(batch.pooled[i], alone.pooled[0], rtol=0, atol=1e-6)
            torch.testing.assert_close(batch.tokens[i, :n], alone.tokens[0, :n], rtol=0, atol=1e-6)


def test_build_and_meta() -> None:
    enc = build_text_encoder("scratch", vocab=[PAD, UNK, "a"], text_dim=8, word_dim=4, max_tokens=5)
    meta = text_encoder_meta(enc)
    assert vocab_from_meta(meta) == [PAD, UNK, "a"] and vocab_from_meta({}) is None
    check_text_encoder_meta(enc, meta)
    with pytest.raises(TasBenchError, match="needs a vocabulary"):
        build_text_encoder("scratch", text_dim=8)
    with pytest.raises(TasBenchError, match="t5_path"):
        build_text_encoder("t5", text_dim=8)
    with pytest.raises(TasBenchError, match="unknown text encoder"):
        build_text_encoder("bert", text_dim=8)
    with pytest.raises(TasBenchError, match="<pad>, <unk>"):
        ScratchTextEncoder(["a", "b"], 4, 8, 5)


# ---------------------------------------------------------------- FLAN-T5 from a local folder


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from test_systems_train import _tiny_t5

    return _tiny_t5(tmp_path_factory.mktemp("t5") / "t5")


def test_t5_encode_frozen(t5_dir: Path) -> None:
    torch.manual_seed(0)
    enc = T5TextEncoder(t5_dir, text_dim=8, max_length=4)
    prompts = ["the noise is located left , front", "", "right"]
    with torch.no_grad():
        out = enc.encode(prompts)
    assert enc.token_dim == 16
    assert out.tokens.shape[0] == 3 and out.tokens.shape[1] == 4 and out.tokens.shape[2] == 16
    assert out.mask[0].all() and not out.mask[1].any() and int(out.mask[2].sum()) == 1
    assert torch.all(out.tokens[1] == 0)
    torch.testing.assert_close(out.pooled[1], torch.tanh(enc.null))
    torch.testing.assert_close(enc(prompts), out.pooled)
    assert set(enc.state_dict()) == {"out.weight", "out.bias", "null"}  # T5 not in our weights
    assert text_encoder_meta(enc) == {"t5_fingerprint": enc.fingerprint}
    with pytest.raises(TasBenchError, match="FLAN-T5 folder differs"):
        check_text_encoder_meta(enc, {"t5_fingerprint": "other"}, t5_dir)


def test_t5_finetune_is_a_trainable_submodule(t5_dir: Path) -> None:
    enc = T5TextEncoder(t5_dir, text_dim=8, max_length=8, finetune=True)
    assert any(k.startswith("t5.") for k in enc.state_dict())
    out = enc.encode(["the noise is located left"])
    out.tokens.sum().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.t5.parameters())


def test_t5_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(TasBenchError, match="FLAN-T5 folder not found"):
        T5TextEncoder(tmp_path / "none", 8, 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TasBenchError, match="cannot load a T5 encoder"):
        T5TextEncoder(tmp_path / "empty", 8, 8)


# ---------------------------------------------------------------- one copy


def test_one_home_for_text_encoders() -> None:
    """No module other than tas_bench/runtime/text.py defines a tokenizer / text encoder / T5 loader."""
    import baselines.pseudobinaural.system as pbs

    markers = ("class ScratchTextEncoder", "class T5TextEncoder", "T5EncoderModel.from_pretrained",
               "def build_vocab", "_WORD_RE =")
    offenders = []
    for pkg in ("tas_bench", "baselines", "evaluators"):
        for path in (ROOT / pkg).rglob("*.py"):
            if path == ROOT / "tas_bench" / "runtime" / "text.py":
                continue
            src = path.read_text(encoding="utf-8", errors="replace")
            offenders += [f"{path.relative_to(ROOT)}: {m}" for m in markers if m in src]
    assert not offenders, offenders
    assert not (ROOT / "baselines" / "pseudobinaural" / "text_encoder.py").exists()
    assert pbs.build_text_encoder is build_text_encoder
