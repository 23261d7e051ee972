"""TAS flipper (text spatial-coherence module) and the total training loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from baselines.tas.codec import RelativeSTFTCodec
from baselines.tas.flipper import Flipper, flipper_loss, pool_text

pytest.importorskip("diffusers")

PROMPTS = ["the dog is located left, front, above, 2m away.",
           "the dog is located right, front, above, 2m away."]


def tiny_pipeline(kind: str = "tas", **over):  # type: ignore[no-untyped-def]
    from baselines.tas.config import preset_config
    from baselines.tas.pipeline import TASPipeline
    from tas_bench.runtime.text import build_vocab

    torch.manual_seed(0)
    args = {"latent_frames": 8,
            "unet": {"block_out_channels": [16, 16, 32, 32], "heads": 2, "norm_num_groups": 8},
            "text_encoder": {"kind": "scratch", "text_dim": 16, "word_dim": 8, "max_tokens": 12},
            "flipper": None if kind == "tas-noflip" else {"width": 16, "hidden": 16}}
    cfg = preset_config("cpu", kind=kind, **{**args, **over})
    return TASPipeline.build(cfg, vocab=build_vocab(PROMPTS))


def _windows(n: int, b: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((b, n + 6)) * 0.1
    left, right = s[:, 6:], 0.5 * s[:, :n]
    return (torch.tensor(left + right, dtype=torch.float32), torch.tensor(left - right, dtype=torch.float32))


def test_pool_text_is_a_masked_mean() -> None:
    t = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    m = torch.tensor([[True, True, False]])
    torch.testing.assert_close(pool_text(t, m), torch.tensor([[2.0, 3.0]]))
    assert torch.equal(pool_text(t, torch.zeros_like(m)), torch.zeros(1, 2))


def test_flipped_pairs_get_label_zero() -> None:
    codec = RelativeSTFTCodec()
    m, d = _windows(codec.window_samples(8), 2)
    z, zf = codec.encode_diff(d, m), codec.encode_diff(-d, m)  # L <-> R swapped: d -> -d
    torch.testing.assert_close(zf, -z)
    torch.manual_seed(0)
    fl = Flipper(codec.latent_channels, 6, width=8, hidden=8)
    text, mask = torch.randn(2, 4, 6), torch.ones(2, 4, dtype=torch.bool)
    out = flipper_loss(fl, z, zf, codec.encode_mono(m), text, mask)
    assert out["labels"].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert out["logits"].shape == (4,)
    torch.testing.assert_close(out["bce"], F.binary_cross_entropy_with_logits(out["logits"], out["labels"]))


def test_flipper_learns_the_side_from_text_and_relstft_latent() -> None:
    """Left/right prompts with their true d vs the swapped -d: a few steps separate them."""
    codec = RelativeSTFTCodec()
    n = codec.window_samples(8)
    m, d = _windows(n, 4, seed=1)
    d[2:] = -d[2:]  # clips 2, 3 are on the right
    text = torch.zeros(4, 1, 2)
    text[:2, 0, 0] = 1.0  # "left"
    text[2:, 0, 1] = 1.0  # "right"
    mask = torch.ones(4, 1, dtype=torch.bool)
    z, zf, zm = codec.encode_diff(d, m), codec.encode_diff(-d, m), codec.encode_mono(m)
    torch.manual_seed(0)
    fl = Flipper(codec.latent_channels, 2, width=8, hidden=16)
    opt = torch.optim.Adam(fl.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        out = flipper_loss(fl, z, zf, zm, text, mask)
        first = first if first is not None else float(out["bce"].detach())
        opt.zero_grad()
        out["bce"].backward()
        opt.step()
    assert float(out["accuracy"]) == 1.0 and float(out["bce"].detach()) < 0.5 * first


def test_total_loss_and_gradient_reaches_the_text_encoder() -> None:
    pipe = tiny_pipeline(flipper_lambda=2.0)
    m, d = _windows(pipe.window_samples, 2)
    out = pipe.training_loss(m, d, PROMPTS, generator=torch.Generator().manual_seed(0))
    assert set(out) >= {"total", "diffusion", "flipper", "flipper_accuracy"}
    torch.testing.assert_close(out["total"], out["diffusion"] + 2.0 * out["flipper"])
    assert float(out["flipper"].detach()) > 0
    # the coherence loss alone reaches the text encoder (fine-tunes it, as in the paper)
    out["flipper"].backward()
    enc = pipe.model.text_encoder
    grads = [p.grad for p in enc.parameters() if p.grad is not None]
    assert grads and any(float(g.abs().sum()) > 0 for g in grads)
    assert pipe.model.unet.conv_in.weight.grad is None  # ... and not the denoiser
    pipe.model.zero_grad()
    out = pipe.training_loss(m, d, PROMPTS, generator=torch.Generator().manual_seed(0))
    out["total"].backward()
    assert float(enc.embed.weight.grad.abs().sum()) > 0
    assert float(pipe.model.unet.conv_in.weight.grad.abs().sum()) > 0


def test_noflip_ablation_has_no_coherence_term() -> None:
    pipe = tiny_pipeline("tas-noflip")
    assert pipe.model.flipper is None
    m, d = _windows(pipe.window_samples, 2)
    out = pipe.training_loss(m, d, PROMPTS, generator=torch.Generator().manual_seed(0))
    assert float(out["flipper"].detach()) == 0.0 and torch.equal(out["total"], out["diffusion"])


def test_training_loss_is_seeded_and_drops_conditions() -> None:
    pipe = tiny_pipeline(cond_dropout=1.0)
    m, d = _windows(pipe.window_samples, 3)
    a = pipe.training_loss(m, d, PROMPTS + [""], generator=torch.Generator().manual_seed(4))
    b = pipe.training_loss(m, d, PROMPTS + [""], generator=torch.Generator().manual_seed(4))
    assert torch.equal(a["total"], b["total"]) and float(a["dropped"]) == 3.0
