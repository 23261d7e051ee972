"""The TAS training loss of one batch: diffusion loss + lambda * flipper BCE.

Diffusion loss: ``mean((eps_hat - eps)^2)`` with ``x_t`` from the paper's DDPM schedule
(:func:`baselines.tas.diffusion.training_targets`), the denoiser fed ``concat(x_t, mono latent)``
and the text tokens, the condition pair dropped to zeros with probability ``cond_dropout``
(:func:`baselines.tas.diffusion.condition_dropout_mask`). Flipper loss
(:func:`baselines.tas.flipper.flipper_loss`) on the undropped text, weighted by
``flipper_lambda``; ``flipper=None`` (the ``tas-noflip`` ablation) leaves it out.

Min-SNR-gamma weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR Weighting
Strategy", its epsilon-prediction form): with ``snr_gamma > 0`` each example's epsilon MSE is
weighted by ``min(SNR_t, gamma) / SNR_t``, ``SNR_t = abar_t / (1 - abar_t)``, so the nearly
noise-free timesteps (where epsilon must be read off the unpredictable fine detail of ``d``) no
longer dominate the gradient over the noisy ones, which are where the prediction depends on the
condition (text and mono). ``snr_gamma = 0`` is the plain mean (the paper's loss).
"""

from __future__ import annotations

from typing import Any

import torch

from baselines.tas.diffusion import (
    COND_DROPOUT,
    Denoiser,
    condition_dropout_mask,
    drop_conditions,
    training_targets,
)
from baselines.tas.flipper import Flipper, flipper_loss


def total_loss(denoiser: Denoiser, scheduler: Any, z0: torch.Tensor, mono: torch.Tensor,
               text: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator,
               cond_dropout: float = COND_DROPOUT, flipper: Flipper | None = None,
               z_flipped: torch.Tensor | None = None, flipper_lambda: float = 1.0,
               snr_gamma: float = 0.0) -> dict[str, torch.Tensor]:
    """Losses of one batch of latents (``z0`` the difference latents, ``mono`` the mono
    latents, both ``(B, C, H, W)``; ``text (B, L, D)`` tokens with ``mask (B, L)``).

    Returns ``{"total", "diffusion", "diffusion_mse", "flipper", "flipper_accuracy",
    "dropped"}`` (scalars; ``diffusion`` is the (min-SNR weighted when ``snr_gamma > 0``) term
    of ``total``, ``diffusion_mse`` the plain epsilon MSE; ``flipper`` and its accuracy are 0
    without a flipper; ``dropped`` counts dropped pairs).
    ``generator`` draws the timesteps, noise and dropout (seeded by the caller per step).
    """
    x_t, eps, t = training_targets(z0, scheduler, generator)
    drop = condition_dropout_mask(z0.shape[0], cond_dropout, generator=generator)
    mono_c, text_c = drop_conditions(mono, text, drop)
    mask_c = torch.where(drop.to(mask.device)[:, None], torch.ones_like(mask), mask)
    eps_hat = denoiser(torch.cat([x_t, mono_c], 1), t, text_c, mask_c)
    per = (eps_hat.float() - eps.float()).square().flatten(1).mean(1)
    mse = per.mean()
    diff_loss = mse
    if snr_gamma > 0:
        diff_loss = (per * min_snr_weights(scheduler, t, snr_gamma).to(per)).mean()
    zero = diff_loss.new_zeros(())
    out = {"diffusion": diff_loss, "diffusion_mse": mse.detach(), "flipper": zero,
           "flipper_accuracy": zero, "dropped": drop.sum().to(diff_loss)}
    total = diff_loss
    if flipper is not None:
        if z_flipped is None:
            raise ValueError("the flipper needs the latents of -d (z_flipped)")
        fl = flipper_loss(flipper, z0, z_flipped, mono, text, mask)
        out["flipper"], out["flipper_accuracy"] = fl["bce"], fl["accuracy"]
        total = total + float(flipper_lambda) * fl["bce"]
    out["total"] = total
    return out


def min_snr_weights(scheduler: Any, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Per-example weights ``min(SNR_t, gamma) / SNR_t`` (float32, on ``t``'s device), with
    ``SNR_t = abar_t / (1 - abar_t)`` from the scheduler's ``alphas_cumprod``."""
    abar = scheduler.alphas_cumprod.to(torch.float64)[t.cpu()]
    snr = abar / (1.0 - abar)
    return (snr.clamp(max=float(gamma)) / snr).to(torch.float32).to(t.device)
