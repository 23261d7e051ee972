"""Diffusion: the paper's noise schedule, DDPM training targets, DDIM + classifier-free guidance.

Schedule (REFERENCE §5): T = 1000, the paper's "linear" schedule = LDM's
``beta_t = linspace(sqrt(0.0015), sqrt(0.0195), T)^2``, which diffusers calls
``beta_schedule="scaled_linear"`` (diffusers' "linear" is a different, plain linspace:
alpha-bar at t = 499 is 0.116 here, 0.049 there); epsilon prediction; DDIM with
``steps_offset=1, clip_sample=False, set_alpha_to_one=False`` (as the AudioLDM converters),
eta = 0 (deterministic given the initial noise).

Classifier-free guidance: in training the condition pair (text tokens and mono latent) is
replaced by zeros with probability 0.1 (:func:`condition_dropout_mask`); at sampling each
denoiser call runs the batch ``[uncond, cond]`` in one forward and combines
``eps = eps_u + s (eps_c - eps_u)`` (s = 2.5 by default).

Determinism: the initial noise of each window is drawn from its own generator seeded by
``(seed, clip key, window index)`` (:func:`window_noise`), never from a batch-level generator,
and the denoiser always runs on micro-batches of one fixed size (padded with zero windows), so
a window's computation has the same shapes, and the same bits, whatever else is in the batch
(for a given micro-batch size, device and torch thread count: BLAS blocks other shapes and
thread counts differently, so those are recorded with the outputs).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from tas_bench.runtime.errors import TasBenchError

NUM_TRAIN_TIMESTEPS = 1000
BETA_START = 0.0015
BETA_END = 0.0195
BETA_SCHEDULE = "scaled_linear"
PREDICTION_TYPE = "epsilon"
GUIDANCE_SCALE = 2.5
COND_DROPOUT = 0.1
#: Accepted ranges of the sampling arguments.
MAX_GUIDANCE = 20.0
MAX_STEPS = NUM_TRAIN_TIMESTEPS


def scheduler_config() -> dict[str, Any]:
    """The DDIM sampler's config (diffusers keyword arguments), as recorded in checkpoints."""
    return {
        "num_train_timesteps": NUM_TRAIN_TIMESTEPS,
        "beta_start": BETA_START,
        "beta_end": BETA_END,
        "beta_schedule": BETA_SCHEDULE,
        "prediction_type": PREDICTION_TYPE,
        "steps_offset": 1,
        "clip_sample": False,
        "set_alpha_to_one": False,
    }


def paper_betas(num_steps: int = NUM_TRAIN_TIMESTEPS) -> np.ndarray:
    """The paper's betas computed directly (float64): ``linspace(sqrt(b0), sqrt(b1), T)^2``."""
    return np.linspace(math.sqrt(BETA_START), math.sqrt(BETA_END), num_steps) ** 2


#: Optional sampler fields: DDIM's ``timestep_spacing`` (diffusers' default and AudioLDM's
#: ``"leading"``: with ``steps_offset=1`` and N steps the first step is at t = 1 + (N-1)*1000/N,
#: so 1 step samples at t = 1, treating pure noise as an almost clean latent; ``"trailing"``
#: always starts at t = 999, Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps
#: Are Flawed", table 2).
TIMESTEP_SPACINGS = ("leading", "trailing", "linspace")


def _check_config(cfg: dict[str, Any]) -> dict[str, Any]:
    want = scheduler_config()
    for key in ("beta_schedule", "prediction_type"):
        if cfg.get(key) != want[key]:
            raise TasBenchError(f"scheduler {key} {cfg.get(key)!r} is not the paper's {want[key]!r}",
                                field=f"scheduler.{key}")
    if cfg.get("timestep_spacing", "leading") not in TIMESTEP_SPACINGS:
        raise TasBenchError(f"scheduler timestep_spacing {cfg.get('timestep_spacing')!r} must be one "
                            f"of {list(TIMESTEP_SPACINGS)}", field="scheduler.timestep_spacing")
    unknown = sorted(set(cfg) - set(want) - {"timestep_spacing"})
    if unknown:
        raise TasBenchError(f"unknown scheduler field(s) {unknown}", field="scheduler")
    return {**want, **cfg}


def check_scheduler_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The sampler config ``cfg`` completed with the defaults; raises :class:`TasBenchError`
    naming a field that is unknown or not the paper's schedule."""
    if not isinstance(cfg, dict):
        raise TasBenchError("scheduler must be an object", field="scheduler")
    return _check_config(dict(cfg))


def make_train_scheduler(cfg: dict[str, Any] | None = None) -> Any:
    """diffusers ``DDPMScheduler`` with the paper's schedule (for ``add_noise`` in training)."""
    from diffusers import DDPMScheduler

    c = _check_config(dict(cfg or scheduler_config()))
    return DDPMScheduler(num_train_timesteps=c["num_train_timesteps"], beta_start=c["beta_start"],
                         beta_end=c["beta_end"], beta_schedule=c["beta_schedule"],
                         prediction_type=c["prediction_type"], clip_sample=False)


def make_sampler(cfg: dict[str, Any] | None = None) -> Any:
    """diffusers ``DDIMScheduler`` with the paper's schedule and AudioLDM's DDIM settings."""
    from diffusers import DDIMScheduler

    return DDIMScheduler(**_check_config(dict(cfg or scheduler_config())))


def sampling_timesteps(steps: int, cfg: dict[str, Any] | None = None) -> list[int]:
    """The DDIM timesteps (descending) that ``steps`` sampling steps visit under ``cfg``."""
    sched = make_sampler(cfg)
    sched.set_timesteps(int(steps))
    return [int(t) for t in sched.timesteps]


def check_sampling_args(steps: Any, guidance_scale: Any) -> tuple[int, float]:
    """Validate DDIM steps (an integer in [1, 1000]) and the guidance scale (finite, in
    [0, 20]); returns them as ``(int, float)``."""
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or not 1 <= int(steps) <= MAX_STEPS:
        raise TasBenchError(f"DDIM steps {steps!r} out of range: an integer in [1, {MAX_STEPS}]",
                            field="steps")
    try:
        s = float(guidance_scale)
    except (TypeError, ValueError):
        raise TasBenchError(f"guidance scale {guidance_scale!r} is not a number", field="guidance_scale") from None
    if isinstance(guidance_scale, bool) or not math.isfinite(s) or not 0.0 <= s <= MAX_GUIDANCE:
        raise TasBenchError(f"guidance scale {guidance_scale!r} out of range [0, {MAX_GUIDANCE:g}] "
                            "(1 = conditional only, the paper uses 2.5)", field="guidance_scale")
    return int(steps), s


# ----------------------------------------------------------------------------------------------
# seeds and noise


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any printable parts (sha256 of their ``repr`` joined by ``|``)."""
    text = "|".join(repr(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def window_noise(shape: Sequence[int], seed: int, clip_key: str, window: int) -> torch.Tensor:
    """Float32 standard normal noise of ``shape`` for one window, from its own CPU generator
    seeded by ``(seed, clip_key, window)``: the same window gets the same bytes in any batch."""
    g = torch.Generator(device="cpu").manual_seed(derive_seed("tas-noise", int(seed), str(clip_key), int(window)))
    return torch.randn(tuple(shape), generator=g, dtype=torch.float32)


def condition_dropout_mask(n: int, p: float = COND_DROPOUT, *,
                           generator: torch.Generator | None = None, seed: int | None = None) -> torch.Tensor:
    """Boolean ``(n,)``: True where the condition pair of a training example is dropped
    (replaced by zeros), each with probability ``p``; drawn from ``generator`` or ``seed``."""
    if not 0.0 <= p <= 1.0:
        raise TasBenchError(f"condition dropout {p!r} must be in [0, 1]", field="cond_dropout")
    if generator is None:
        generator = torch.Generator().manual_seed(derive_seed("tas-dropout", 0 if seed is None else int(seed)))
    return torch.rand(n, generator=generator) < p


def drop_conditions(mono: torch.Tensor, text: torch.Tensor, drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``mono`` latents ``(B, C, H, W)`` and ``text`` tokens ``(B, L, D)`` with the rows where
    ``drop`` is True replaced by zeros."""
    keep_m = (~drop).to(mono.dtype).view(-1, *([1] * (mono.ndim - 1))).to(mono.device)
    keep_t = (~drop).to(text.dtype).view(-1, *([1] * (text.ndim - 1))).to(text.device)
    return mono * keep_m, text * keep_t


def cfg_combine(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``eps_u + scale * (eps_c - eps_u)``."""
    return eps_uncond + scale * (eps_cond - eps_uncond)


# ----------------------------------------------------------------------------------------------
# the denoiser call

#: ``denoiser(sample (N, 2C, H, W), timesteps (N,), text (N, L, D), text_mask (N, L)) -> eps``
Denoiser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def unet_denoiser(unet: Any) -> Denoiser:
    """Wrap a diffusers ``UNet2DConditionModel`` as a :data:`Denoiser` (appending the fixed
    frequency channels, :func:`baselines.tas.unet.frequency_channels`, when it has any)."""
    from baselines.tas.unet import extra_input_channels, frequency_channels

    extra = extra_input_channels(unet)
    pooled = getattr(unet.config, "class_embed_type", None) == "projection"
    skip = None
    if getattr(unet, "tas_prior_skip", False):  # sqrt(1 - abar_t) per timestep (float32)
        abar = np.cumprod(1.0 - paper_betas())
        skip = torch.from_numpy(np.sqrt(1.0 - abar)).to(torch.float32)

    def call(sample: torch.Tensor, t: torch.Tensor, text: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if extra > 0:
            pos = frequency_channels(extra, sample.shape[3]).to(sample)
            pos = pos[None, :, None, :].expand(sample.shape[0], -1, sample.shape[2], -1)
            sample = torch.cat([sample, pos], 1)
        labels = None
        if pooled:  # the masked mean of the tokens (zeros in the unconditional branch)
            m = mask.to(text.dtype)[..., None]
            labels = (text * m).sum(1) / m.sum(1).clamp(min=1.0)
        out = unet(sample, t, encoder_hidden_states=text, encoder_attention_mask=mask,
                   class_labels=labels).sample
        if skip is not None:
            c = out.shape[1]
            out = out + skip.to(sample.device)[t.long().cpu()].to(out).view(-1, 1, 1, 1) * sample[:, :c]
        return out
    return call


def guided_eps(denoiser: Denoiser, x: torch.Tensor, t: int | torch.Tensor, mono: torch.Tensor,
               text: torch.Tensor, mask: torch.Tensor, scale: float, micro_batch: int) -> torch.Tensor:
    """CFG noise prediction for ``x (N, C, H, W)`` at timestep ``t``.

    Works through the N windows in chunks of exactly ``micro_batch`` (the last padded with zero
    windows), each as one forward of the batch ``[uncond (mb), cond (mb)]``: the unconditional
    half has the mono latent and the text tokens replaced by zeros.
    """
    if micro_batch < 1:
        raise TasBenchError(f"micro_batch {micro_batch} must be >= 1", field="micro_batch")
    n = x.shape[0]
    outs = []
    for b in range(0, n, micro_batch):
        k = min(micro_batch, n - b)
        xs, ms, ts, ks = (_pad(v[b:b + k], micro_batch) for v in (x, mono, text, mask))
        sample = torch.cat([torch.cat([xs, torch.zeros_like(ms)], 1), torch.cat([xs, ms], 1)], 0)
        tt = torch.full((2 * micro_batch,), int(t), dtype=torch.long, device=x.device)
        tokens = torch.cat([torch.zeros_like(ts), ts], 0)
        tmask = torch.cat([torch.ones_like(ks), ks], 0)
        eps = denoiser(sample, tt, tokens, tmask)
        eps_u, eps_c = eps[:micro_batch], eps[micro_batch:]
        outs.append(cfg_combine(eps_u, eps_c, scale)[:k])
    return torch.cat(outs, 0)


def _pad(v: torch.Tensor, size: int) -> torch.Tensor:
    if v.shape[0] == size:
        return v
    return torch.cat([v, torch.zeros((size - v.shape[0], *v.shape[1:]), dtype=v.dtype, device=v.device)], 0)


@torch.no_grad()
def ddim_sample(denoiser: Denoiser, mono: torch.Tensor, text: torch.Tensor, mask: torch.Tensor,
                keys: Sequence[tuple[str, int]], *, seed: int, steps: int, guidance_scale: float,
                micro_batch: int, scheduler_cfg: dict[str, Any] | None = None,
                progress: Callable[[int, int], None] | None = None,
                x0_guide: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """DDIM sampling of the difference latents of N windows (eta = 0).

    ``mono (N, C, H, W)``: the mono latents; ``text (N, L, D)`` / ``mask (N, L)``: the text
    tokens per window; ``keys``: ``(clip key, window index)`` per window, which seed each
    window's initial noise (:func:`window_noise`). Returns the ``x0`` latents ``(N, C, H, W)``.

    ``x0_guide``: optional guidance on the clean-latent estimate. At each step the (CFG) noise
    prediction gives ``x0 = (x_t - sqrt(1 - abar) eps) / sqrt(abar)``; ``x0_guide(x0)`` returns
    a shift added to it, and the step continues from the noise prediction consistent with the
    shifted ``x0`` (``eps' = (x_t - sqrt(abar) x0') / sqrt(1 - abar)``), so DDIM then moves
    towards ``x0'`` (used by :class:`~baselines.tas.pipeline.TASPipeline` for flipper guidance).
    """
    steps, scale = check_sampling_args(steps, guidance_scale)
    if len(keys) != mono.shape[0]:
        raise TasBenchError(f"{len(keys)} noise keys for {mono.shape[0]} windows")
    sched = make_sampler(scheduler_cfg)
    sched.set_timesteps(steps)
    shape = tuple(mono.shape[1:])
    x = torch.stack([window_noise(shape, seed, k, w) for k, w in keys]).to(mono.device, mono.dtype)
    x = x * sched.init_noise_sigma
    for i, t in enumerate(sched.timesteps):
        eps = guided_eps(denoiser, x, int(t), mono, text, mask, scale, micro_batch)
        if x0_guide is not None:
            abar = float(sched.alphas_cumprod[int(t)])
            a, s = math.sqrt(abar), math.sqrt(1.0 - abar)
            x0 = (x - s * eps) / a
            x0 = x0 + x0_guide(x0)
            eps = (x - a * x0) / s
        x = sched.step(eps, t, x, eta=0.0).prev_sample
        if progress is not None:
            progress(i + 1, steps)
    return x


def training_targets(z0: torch.Tensor, scheduler: Any, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DDPM training sample: timesteps ``t ~ U{0..T-1}``, noise ``eps ~ N(0, I)`` (both from
    ``generator``, on the CPU) and ``x_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps``."""
    n = z0.shape[0]
    t = torch.randint(0, int(scheduler.config.num_train_timesteps), (n,), generator=generator)
    eps = torch.randn(tuple(z0.shape), generator=generator, dtype=torch.float32)
    t, eps = t.to(z0.device), eps.to(z0.device, z0.dtype)
    return scheduler.add_noise(z0, eps, t), eps, t
