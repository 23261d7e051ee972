"""TAS diffusion: the paper's schedule, DDIM settings, CFG batching, seeded per-window noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.tas.diffusion import (
    check_sampling_args,
    condition_dropout_mask,
    ddim_sample,
    drop_conditions,
    guided_eps,
    make_sampler,
    make_train_scheduler,
    paper_betas,
    scheduler_config,
    training_targets,
    unet_denoiser,
    window_noise,
)
from tas_bench.runtime.errors import TasBenchError

C, H, W, L, D = 2, 8, 8, 3, 8


def tiny_unet() -> torch.nn.Module:
    from baselines.tas.unet import build_unet, unet_config

    torch.manual_seed(0)
    spec = {"block_out_channels": [8, 8, 16, 16], "layers_per_block": 1, "heads": 2,
            "norm_num_groups": 8}
    return build_unet(unet_config(spec, C, D)).eval()


def _conds(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mono = torch.randn(n, C, H, W, generator=g)
    text = torch.randn(n, L, D, generator=g)
    mask = torch.ones(n, L, dtype=torch.bool)
    return mono, text, mask


def test_schedule_is_the_papers_scaled_linear() -> None:
    pytest.importorskip("diffusers")
    from diffusers import DDPMScheduler

    sched = make_train_scheduler()
    betas = paper_betas()
    assert betas[0] == pytest.approx(0.0015) and betas[-1] == pytest.approx(0.0195)
    np.testing.assert_allclose(sched.betas.double().numpy(), betas, rtol=1e-6)
    abar = np.cumprod(1.0 - betas)
    assert abar[499] == pytest.approx(0.116, abs=5e-4)
    assert float(sched.alphas_cumprod[499]) == pytest.approx(abar[499], rel=1e-5)
    # diffusers' plain "linear" is a different schedule (REFERENCE §5)
    lin = DDPMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule="linear")
    assert float(lin.alphas_cumprod[499]) == pytest.approx(0.049, abs=1e-3)


def test_ddim_settings() -> None:
    pytest.importorskip("diffusers")
    s = make_sampler()
    cfg = s.config
    assert cfg.beta_schedule == "scaled_linear" and cfg.prediction_type == "epsilon"
    assert cfg.steps_offset == 1 and cfg.clip_sample is False and cfg.set_alpha_to_one is False
    assert cfg.num_train_timesteps == 1000
    assert float(s.final_alpha_cumprod) == pytest.approx(float(s.alphas_cumprod[0]))
    s.set_timesteps(2)
    assert s.timesteps.tolist() == [501, 1]
    with pytest.raises(TasBenchError, match="beta_schedule 'linear' is not the paper's"):
        make_sampler({**scheduler_config(), "beta_schedule": "linear"})
    with pytest.raises(TasBenchError, match="unknown scheduler field"):
        make_sampler({**scheduler_config(), "eta": 1})


def test_training_targets_follow_the_forward_process() -> None:
    pytest.importorskip("diffusers")
    sched = make_train_scheduler()
    z0 = torch.randn(5, C, H, W)
    x_t, eps, t = training_targets(z0, sched, torch.Generator().manual_seed(1))
    ab = torch.tensor(np.cumprod(1.0 - paper_betas()), dtype=torch.float32)[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(x_t, ab.sqrt() * z0 + (1 - ab).sqrt() * eps, atol=1e-5, rtol=1e-5)
    again = training_targets(z0, sched, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], x_t) and torch.equal(again[2], t)


def test_condition_dropout_mask_is_seeded_with_rate_p() -> None:
    a = condition_dropout_mask(20000, 0.1, seed=3)
    assert torch.equal(a, condition_dropout_mask(20000, 0.1, seed=3))
    assert not torch.equal(a, condition_dropout_mask(20000, 0.1, seed=4))
    assert abs(float(a.float().mean()) - 0.1) < 0.01
    assert not condition_dropout_mask(50, 0.0, seed=0).any()
    assert condition_dropout_mask(50, 1.0, seed=0).all()
    with pytest.raises(TasBenchError, match="dropout"):
        condition_dropout_mask(5, 1.5)
    mono, text, _ = _conds(3)
    m2, t2 = drop_conditions(mono, text, torch.tensor([False, True, False]))
    assert torch.equal(m2[0], mono[0]) and float(m2[1].abs().sum()) == 0 and float(t2[1].abs().sum()) == 0
    assert torch.equal(t2[2], text[2])


def test_cfg_runs_uncond_then_cond_in_one_forward() -> None:
    calls = []

    def fake(sample: torch.Tensor, t: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        calls.append((sample.clone(), text.clone()))
        return sample[:, :C] + sample[:, C:] + text.mean((1, 2)).view(-1, 1, 1, 1)

    mono, text, mask = _conds(3)
    x = torch.randn(3, C, H, W)
    eps = guided_eps(fake, x, 10, mono, text, mask, 2.5, micro_batch=4)
    assert len(calls) == 1
    sample, tokens = calls[0]
    assert sample.shape == (8, 2 * C, H, W)  # [uncond x 4, cond x 4], the last window padded
    assert float(sample[:4, C:].abs().sum()) == 0 and float(tokens[:4].abs().sum()) == 0
    assert torch.equal(sample[4:7, C:], mono) and torch.equal(tokens[4:7], text)
    eu = x
    ec = x + mono + text.mean((1, 2)).view(-1, 1, 1, 1)
    torch.testing.assert_close(eps, eu + 2.5 * (ec - eu))


def test_cfg_scale_one_equals_the_conditional_prediction() -> None:
    pytest.importorskip("diffusers")
    unet = tiny_unet()
    den = unet_denoiser(unet)
    mono, text, mask = _conds(2)
    x = torch.randn(2, C, H, W)
    with torch.no_grad():
        guided = guided_eps(den, x, 500, mono, text, mask, 1.0, micro_batch=2)
        cond = den(torch.cat([x, mono], 1), torch.full((2,), 500), text, mask)
        uncond = den(torch.cat([x, torch.zeros_like(mono)], 1), torch.full((2,), 500),
                     torch.zeros_like(text), mask)
        zero_scale = guided_eps(den, x, 500, mono, text, mask, 0.0, micro_batch=2)
        # the same shapes as the CFG forward (batch 4): only the combination's rounding differs
        cond4 = den(torch.cat([x, mono], 1).repeat(2, 1, 1, 1), torch.full((4,), 500),
                    text.repeat(2, 1, 1), mask.repeat(2, 1))
    torch.testing.assert_close(guided, cond4[:2], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(guided, cond, atol=1e-4, rtol=1e-4)  # other batch shape: BLAS
    torch.testing.assert_close(zero_scale, uncond, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(cond, uncond, atol=1e-3)


def test_window_noise_is_per_window_and_reproducible() -> None:
    a = window_noise((C, H, W), 0, "clip-a", 0)
    assert torch.equal(a, window_noise((C, H, W), 0, "clip-a", 0))
    for other in (window_noise((C, H, W), 1, "clip-a", 0), window_noise((C, H, W), 0, "clip-b", 0),
                  window_noise((C, H, W), 0, "clip-a", 1)):
        assert not torch.equal(a, other)
    assert a.dtype == torch.float32 and abs(float(a.std()) - 1.0) < 0.3


def test_sampling_is_batch_invariant_bytes() -> None:
    pytest.importorskip("diffusers")
    den = unet_denoiser(tiny_unet())
    mono, text, mask = _conds(3, seed=5)
    keys = [("a", 0), ("b", 0), ("b", 1)]
    kw = {"seed": 7, "steps": 3, "guidance_scale": 2.5, "micro_batch": 4}
    alone = ddim_sample(den, mono[1:2], text[1:2], mask[1:2], keys[1:2], **kw)
    together = ddim_sample(den, mono, text, mask, keys, **kw)
    assert alone.numpy().tobytes() == together[1:2].numpy().tobytes()
    assert torch.isfinite(together).all()
    shuffled = ddim_sample(den, mono[[2, 1, 0]], text[[2, 1, 0]], mask[[2, 1, 0]],
                           [keys[2], keys[1], keys[0]], **kw)
    assert shuffled[1].numpy().tobytes() == alone[0].numpy().tobytes()


def test_sampling_argument_ranges() -> None:
    assert check_sampling_args(200, 2.5) == (200, 2.5)
    assert check_sampling_args(np.int64(1), 0) == (1, 0.0)
    for steps in (0, 1001, 2.5, True, "10", None):
        with pytest.raises(TasBenchError, match="steps"):
            check_sampling_args(steps, 2.5)
    for scale in (-0.1, 20.5, math.nan, math.inf, "x", None, True):
        with pytest.raises(TasBenchError, match="guidance scale"):
            check_sampling_args(10, scale)


def test_min_snr_weights_hand_values() -> None:
    from baselines.tas.losses import min_snr_weights

    sched = make_train_scheduler()
    abar = sched.alphas_cumprod.double()
    t = torch.tensor([0, 499, 999])
    w = min_snr_weights(sched, t, 5.0)
    snr0 = float(abar[0] / (1 - abar[0]))  # abar_0 = 1 - 0.0015: SNR 665.7
    assert abs(snr0 / (0.9985 / 0.0015) - 1) < 1e-3  # diffusers keeps abar in float32
    torch.testing.assert_close(w, torch.tensor([5.0 / snr0, 1.0, 1.0]))  # SNR(499) = 0.13 < 5


def test_total_loss_min_snr_weighting() -> None:
    pytest.importorskip("diffusers")
    from baselines.tas.losses import min_snr_weights, total_loss

    sched = make_train_scheduler()
    den = unet_denoiser(tiny_unet())
    mono, text, mask = _conds(4, seed=3)
    z0 = torch.randn(4, C, H, W, generator=torch.Generator().manual_seed(1))

    def run(gamma: float) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return total_loss(den, sched, z0, mono, text, mask, cond_dropout=0.0,
                              generator=torch.Generator().manual_seed(9), snr_gamma=gamma)

    plain, weighted = run(0.0), run(5.0)
    assert torch.equal(plain["diffusion"], plain["diffusion_mse"])
    torch.testing.assert_close(weighted["diffusion_mse"], plain["diffusion_mse"])
    # recompute by hand with the same draws
    x_t, eps, t = training_targets(z0, sched, torch.Generator().manual_seed(9))
    with torch.no_grad():
        per = (den(torch.cat([x_t, mono], 1), t, text, mask) - eps).square().flatten(1).mean(1)
    torch.testing.assert_close(weighted["diffusion"], (per * min_snr_weights(sched, t, 5.0)).mean())
    torch.testing.assert_close(plain["diffusion"], per.mean())


def test_timestep_spacing() -> None:
    from baselines.tas.diffusion import sampling_timesteps

    lead = scheduler_config()
    trail = {**lead, "timestep_spacing": "trailing"}
    assert sampling_timesteps(1, lead) == [1]  # AudioLDM's leading spacing: 1 step is t = 1
    assert sampling_timesteps(4, lead) == [751, 501, 251, 1]
    assert sampling_timesteps(1, trail) == [999]
    assert sampling_timesteps(4, trail) == [999, 749, 499, 249]
    with pytest.raises(TasBenchError, match="timestep_spacing"):
        make_sampler({**lead, "timestep_spacing": "random"})
    from baselines.tas.config import preset_config

    with pytest.raises(TasBenchError, match="timestep_spacing"):
        preset_config("cpu", scheduler={**lead, "timestep_spacing": "random"})
    assert preset_config("cpu", scheduler=trail).scheduler["timestep_spacing"] == "trailing"
