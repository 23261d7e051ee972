"""The TAS training loss of one batch: diffusion loss + lambda * flipper BCE.

Diffusion loss: ``mean((eps_hat - eps)^2)`` with ``x_t`` from the paper's DDPM schedule
(:func:`baselines.tas.diffusion.training_targets`), the denoiser fed ``concat(x_t, mono latent)``
and the text tokens, the condition pair dropped to zeros with probability ``cond_dropout``
(:func:`baselines.tas.diffusion.condition_dropout_mask`). Flipper loss
(:func:`baselines.tas.flipper.flipper_loss`) on the undropped text, weighted by
``flipper_lambda``; ``flipper=None`` (the ``tas-noflip`` ablation) leaves it out.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

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
               z_flipped: torch.Tensor | None = None, flipper_lambda: float = 1.0) -> dict[str, torch.Tensor]:
    """Losses of one batch of latents (``z0`` the difference latents, ``mono`` the mono
    latents, both ``(B, C, H, W)``; ``text (B, L, D)`` tokens with ``mask (B, L)``).

    Returns ``{"total", "diffusion", "flipper", "flipper_accuracy", "dropped"}`` (scalars;
    ``flipper`` and its accuracy are 0 without a flipper; ``dropped`` counts dropped pairs).
    ``generator`` draws the timesteps, noise and dropout (seeded by the caller per step).
    """
    x_t, eps, t = training_targets(z0, scheduler, generator)
    drop = condition_dropout_mask(z0.shape[0], cond_dropout, generator=generator)
    mono_c, text_c = drop_conditions(mono, text, drop)
    mask_c = torch.where(drop.to(mask.device)[:, None], torch.ones_like(mask), mask)
    eps_hat = denoiser(torch.cat([x_t, mono_c], 1), t, text_c, mask_c)
    diff_loss = F.mse_loss(eps_hat.float(), eps.float())
    zero = diff_loss.new_zeros(())
    out = {"diffusion": diff_loss, "flipper": zero, "flipper_accuracy": zero,
           "dropped": drop.sum().to(diff_loss)}
    total = diff_loss
    if flipper is not None:
        if z_flipped is None:
            raise ValueError("the flipper needs the latents of -d (z_flipped)")
        fl = flipper_loss(flipper, z0, z_flipped, mono, text, mask)
        out["flipper"], out["flipper_accuracy"] = fl["bce"], fl["accuracy"]
        total = total + float(flipper_lambda) * fl["bce"]
    out["total"] = total
    return out
