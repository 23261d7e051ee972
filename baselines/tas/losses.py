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

Interaural-cue loss (``cue_weight > 0``; not in the paper, off by default): the epsilon MSE
weighs every latent value alike, and the front/back and up/down cues (the pinna's pattern of
band ILDs across frequency, a few dB at 4-8 kHz) are a small part of ``d``'s variance, so a
small denoiser learns the side but leaves those words of the prompt unused. This term compares
the band ILDs of the denoiser's clean-latent estimate ``z0_hat = (x_t - sqrt(1 - abar_t)
eps_hat) / sqrt(abar_t)`` with the target's, over the window, in the evaluator's 19 bands
(:func:`band_ild_loss`; the localiser's band layout, :mod:`evaluators.localiser`): the mean
absolute band-ILD error in dB. Each example is weighted by ``sqrt(abar_t)``, which cancels the
``1 / sqrt(abar_t)`` by which eps_hat's error enters ``z0_hat``, so the gradient stays bounded
at the noisiest steps; examples whose condition pair was dropped (nothing to read the
direction from) are left out. It needs a codec that keeps the sign of ``d`` (relstft).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
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
from evaluators.localiser import BAND_ACTIVE_FRACTION, BAND_EPS_FRACTION, N_BANDS, band_index

#: ``cue_fn(z_hat, z0) -> (B,)`` band-ILD errors in dB (:func:`band_ild_loss` with its codec).
CueFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def total_loss(denoiser: Denoiser, scheduler: Any, z0: torch.Tensor, mono: torch.Tensor,
               text: torch.Tensor, mask: torch.Tensor, *, generator: torch.Generator,
               cond_dropout: float = COND_DROPOUT, flipper: Flipper | None = None,
               z_flipped: torch.Tensor | None = None, flipper_lambda: float = 1.0,
               snr_gamma: float = 0.0, cue_weight: float = 0.0,
               cue_fn: CueFn | None = None) -> dict[str, torch.Tensor]:
    """Losses of one batch of latents (``z0`` the difference latents, ``mono`` the mono
    latents, both ``(B, C, H, W)``; ``text (B, L, D)`` tokens with ``mask (B, L)``).

    Returns ``{"total", "diffusion", "diffusion_mse", "flipper", "flipper_accuracy", "cue",
    "cue_db", "dropped"}`` (scalars; ``diffusion`` is the (min-SNR weighted when ``snr_gamma >
    0``) term of ``total``, ``diffusion_mse`` the plain epsilon MSE; ``flipper`` and its
    accuracy are 0 without a flipper; ``cue`` the weighted interaural-cue term (``total`` adds
    ``cue_weight * cue``) and ``cue_db`` the plain mean band-ILD error in dB of the undropped
    examples, both 0 when ``cue_weight`` is 0; ``dropped`` counts dropped pairs).
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
           "flipper_accuracy": zero, "cue": zero, "cue_db": zero, "dropped": drop.sum().to(diff_loss)}
    total = diff_loss
    if cue_weight > 0:
        if cue_fn is None:
            raise ValueError("cue_weight > 0 needs cue_fn")
        abar = scheduler.alphas_cumprod.to(torch.float32)[t.cpu()].to(x_t.device)
        a, s = abar.sqrt().view(-1, 1, 1, 1), (1.0 - abar).sqrt().view(-1, 1, 1, 1)
        z_hat = (x_t.float() - s * eps_hat.float()) / a
        kept = (~drop).to(x_t.device)
        err = cue_fn(z_hat, z0).to(torch.float32)
        w = abar.sqrt() * kept.to(torch.float32)
        out["cue"] = (w * err).sum() / z0.shape[0]
        out["cue_db"] = (err.detach() * kept).sum() / kept.sum().clamp(min=1)
        total = total + float(cue_weight) * out["cue"]
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


@functools.lru_cache(maxsize=8)
def _band_matrix(n_fft: int, sample_rate: int) -> torch.Tensor:
    """``(n_fft/2 + 1, N_BANDS)`` 0/1 matrix: rfft bin -> localiser band (built once per grid)."""
    idx = torch.as_tensor(band_index(n_fft, sample_rate))
    onehot = torch.zeros(idx.shape[0], N_BANDS, dtype=torch.float64)
    keep = idx >= 0
    onehot[torch.nonzero(keep).flatten(), idx[keep]] = 1.0
    return onehot


def window_band_ild(mono: torch.Tensor, diff: torch.Tensor, n_fft: int, sample_rate: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Band ILDs ``(B, N_BANDS)`` in dB of the windows whose STFTs are ``mono`` (of ``m = L +
    R``) and ``diff`` (of ``d = L - R``), both ``(B, n_fft/2 + 1, K)``, and the mask of active
    bands: the evaluator's definition (:func:`evaluators.localiser.band_ild_from_energies`)
    on the energies of ``L = (m + d) / 2`` and ``R = (m - d) / 2`` summed over the window's
    frames and each band's bins (a band is inactive below 1e-6 of the in-range energy)."""
    onehot = _band_matrix(n_fft, sample_rate).to(mono.device)
    left, right = 0.5 * (mono + diff), 0.5 * (mono - diff)
    el = (left.real.square() + left.imag.square()).sum(-1) @ onehot   # (B, N_BANDS)
    er = (right.real.square() + right.imag.square()).sum(-1) @ onehot
    total = (el + er).sum(-1, keepdim=True)
    eps = BAND_EPS_FRACTION * total + 1e-300
    ild = 10.0 * torch.log10((el + eps) / (er + eps))
    return ild, (el + er) >= BAND_ACTIVE_FRACTION * total


def band_ild_loss(codec: Any, z_hat: torch.Tensor, z0: torch.Tensor, mono: torch.Tensor
                  ) -> torch.Tensor:
    """Per-example mean absolute band-ILD error (dB, ``(B,)`` float64) of the difference
    latents ``z_hat`` against the targets ``z0`` over the bands active in the target, for the
    mono windows ``mono (B, n)``; differentiable in ``z_hat``. ``codec`` must have a
    :meth:`~baselines.tas.codec.Codec.diff_spectrum` (relstft)."""
    d_hat, ms = codec.diff_spectrum(z_hat, mono)
    with torch.no_grad():
        d0, _ = codec.diff_spectrum(z0, mono)
    n_fft = 2 * (ms.shape[1] - 1)
    ild_hat, _ = window_band_ild(ms, d_hat, n_fft, codec.sample_rate)
    ild0, active = window_band_ild(ms, d0, n_fft, codec.sample_rate)
    err = torch.where(active, (ild_hat - ild0).abs(), torch.zeros_like(ild_hat))
    return err.sum(-1) / active.sum(-1).clamp(min=1)

