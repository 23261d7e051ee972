"""The TAS denoiser: diffusers ``UNet2DConditionModel`` configurations (paper and CPU presets).

Structure (REFERENCE §1, §5): 4 down and 4 up levels with a cross-attention mid block;
attention (``CrossAttn*`` blocks: self-attention + cross-attention to the text tokens) in the
last 3 encoder and the first 3 decoder blocks; AudioLDM's widths 128/256/384/640 with 2 ResNet
layers per block in the paper preset. Input channels = 2 x the latent's (the noisy difference
latent concatenated with the mono latent); output = the latent's channels (epsilon).
``cross_attention_dim`` = the text encoder's width (1024 for FLAN-T5-large).

Heads: diffusers' ``attention_head_dim`` argument of ``UNet2DConditionModel`` is, for
historical reasons, used as the *number of heads* (REFERENCE §5); the presets set it to 8, so
each attention level has 8 heads of ``width / 8`` dims (32, 48, 80 at widths 256, 384, 640). The
paper's "8 heads x 64 dims" cannot hold at all of AudioLDM's widths (a level's heads x head dims
equals its width in diffusers' transformer blocks); 8 heads is what is kept.

Frequency channels (``freq_channels`` in the spec, default 0): that many fixed channels of the
latent's frequency coordinate (:func:`frequency_channels`) are appended to the input. A
convolutional U-Net is translation-equivariant along the frequency axis and would otherwise
have to infer absolute frequency from the image borders, yet the interaural transfer it must
produce (``D / M``, e.g. ``i tan(pi f tau)`` for a delay ``tau``) is a function of absolute
frequency. They are not a condition: classifier-free guidance's unconditional branch keeps them.

Prior skip (``prior_skip`` in the spec, default off): the denoiser returns
``eps_hat = sqrt(1 - abar_t) x_t + F(x_t, t, cond)`` with ``F`` the U-Net (its output layer
zero-initialised). ``sqrt(1 - abar_t) x_t`` is the exact MMSE noise prediction when the clean
latent is unit-variance white noise, so the network only learns the residual that the
condition and the latent's structure explain. It is still an epsilon prediction. Why: at
high noise DDIM's clean estimate is ``(x_t - sqrt(1 - abar) eps_hat) / sqrt(abar)``, which
multiplies any error of ``eps_hat`` by up to 84 (t = 999); a small U-Net that has not learned to
pass ``x_t`` through to 1 % precision produces clean estimates, and samples, many times louder
than the data (measured: 4x at 4 leading steps, 29x at 4 trailing steps after 500 steps).

Pooled text embedding (``text_class_embed`` in the spec, default off): the masked mean of the
text tokens also enters through diffusers' ``class_embed_type="projection"`` (a linear map added
to the timestep embedding, i.e. a scale/shift of every ResNet block at every resolution), as
AudioLDM 1 conditions on its CLAP embedding. Cross-attention alone reaches only the three
coarse levels, and "left" versus "right" is a global sign flip of ``d``, which a per-block
modulation expresses directly. In CFG's unconditional branch (and a dropped condition) the
tokens are zeros, so the pooled vector is zero too.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from tas_bench.runtime.errors import TasBenchError

DOWN_BLOCKS = ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D")
UP_BLOCKS = ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D")
MID_BLOCK = "UNetMidBlock2DCrossAttn"
#: The latent's H and W must be multiples of this (three 2x downsamplings).
DOWNSAMPLE = 8

PRESETS: dict[str, dict[str, Any]] = {
    # AudioLDM / AudioLDM2 widths (model_channels 128, channel_mult 1, 2, 3, 5), 2 res blocks
    "paper": {"block_out_channels": [128, 256, 384, 640], "layers_per_block": 2, "heads": 8,
              "norm_num_groups": 32},
    # the same structure, narrow and one res block per level: trains on 2 CPU cores
    "cpu": {"block_out_channels": [32, 48, 64, 96], "layers_per_block": 1, "heads": 8,
            "norm_num_groups": 16},
}


def unet_config(preset: str | dict[str, Any], latent_channels: int,
                cross_attention_dim: int) -> dict[str, Any]:
    """The ``UNet2DConditionModel`` keyword arguments for ``preset`` (a name or a dict of
    ``block_out_channels``, ``layers_per_block``, ``heads``, ``norm_num_groups``)."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise TasBenchError(f"unknown denoiser preset {preset!r}; known: {sorted(PRESETS)}",
                                field="preset")
        spec = PRESETS[preset]
    else:
        spec = {**PRESETS["cpu"], **preset}
    widths = [int(c) for c in spec["block_out_channels"]]
    heads, groups = int(spec["heads"]), int(spec["norm_num_groups"])
    if len(widths) != 4:
        raise TasBenchError(f"block_out_channels needs 4 widths (4 levels), got {widths}",
                            field="unet.block_out_channels")
    for w in widths:
        if w % groups or w % heads:
            raise TasBenchError(f"width {w} must be divisible by norm_num_groups {groups} and by "
                                f"heads {heads}", field="unet.block_out_channels")
    if latent_channels < 1 or cross_attention_dim < 1:
        raise TasBenchError("latent_channels and cross_attention_dim must be positive")
    extra = spec.get("freq_channels", 0)
    if isinstance(extra, bool) or not isinstance(extra, int) or not 0 <= extra <= 16:
        raise TasBenchError(f"freq_channels {extra!r} must be an integer in [0, 16]",
                            field="unet.freq_channels")
    if not isinstance(spec.get("prior_skip", False), bool):
        raise TasBenchError(f"prior_skip {spec.get('prior_skip')!r} must be true or false",
                            field="unet.prior_skip")
    text_class = spec.get("text_class_embed", False)
    if not isinstance(text_class, bool):
        raise TasBenchError(f"text_class_embed {text_class!r} must be true or false",
                            field="unet.text_class_embed")
    out: dict[str, Any] = {
        "in_channels": 2 * int(latent_channels) + extra,
        "out_channels": int(latent_channels),
        "down_block_types": list(DOWN_BLOCKS),
        "mid_block_type": MID_BLOCK,
        "up_block_types": list(UP_BLOCKS),
        "block_out_channels": widths,
        "layers_per_block": int(spec["layers_per_block"]),
        "attention_head_dim": heads,  # = number of heads in diffusers (see module docstring)
        "norm_num_groups": groups,
        "cross_attention_dim": int(cross_attention_dim),
        "transformer_layers_per_block": 1,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
    }
    if text_class:
        out["class_embed_type"] = "projection"
        out["projection_class_embeddings_input_dim"] = int(cross_attention_dim)
    return out


def frequency_channels(n: int, width: int) -> torch.Tensor:
    """``(n, width)`` float32 coordinate channels of a latent's frequency axis: with ``x =
    (w + 0.5) / width`` in (0, 1), channel 0 is ``2x - 1`` and channel ``k >= 1`` is
    ``cos(2^(k-1) pi x)`` (a linear ramp plus octave-spaced cosines, all in [-1, 1])."""
    x = (torch.arange(width, dtype=torch.float64) + 0.5) / width
    rows = [2 * x - 1] + [torch.cos((2 ** (k - 1)) * math.pi * x) for k in range(1, n)]
    return torch.stack(rows[:n]).to(torch.float32) if n else torch.zeros(0, width)


def extra_input_channels(unet: Any) -> int:
    """Frequency channels a built U-Net expects beyond ``concat(noisy latent, mono latent)``."""
    return int(unet.config.in_channels) - 2 * int(unet.config.out_channels)


def build_unet(config: dict[str, Any], *, prior_skip: bool = False) -> Any:
    """A randomly initialised ``UNet2DConditionModel`` from :func:`unet_config`'s output.

    ``prior_skip``: mark it for the prior-skip denoiser (module docstring; the attribute
    ``tas_prior_skip`` that :func:`~baselines.tas.diffusion.unet_denoiser` reads) and
    zero-initialise its output convolution."""
    try:
        from diffusers import UNet2DConditionModel
    except ImportError:
        raise TasBenchError("the TAS denoiser needs diffusers installed (`pip install diffusers`)") from None
    unet = UNet2DConditionModel(**config)
    unet.tas_prior_skip = bool(prior_skip)
    if prior_skip:
        torch.nn.init.zeros_(unet.conv_out.weight)
        torch.nn.init.zeros_(unet.conv_out.bias)
    return unet


def count_parameters(module: Any) -> int:
    """Number of parameters of a torch module."""
    return int(sum(p.numel() for p in module.parameters()))


def parameter_counts(latent_channels: int = 8, cross_attention_dim: int = 1024,
                     cpu_latent_channels: int | None = None,
                     cpu_cross_attention_dim: int | None = None) -> dict[str, int]:
    """Denoiser parameters of both presets: ``{"paper": n, "cpu": n}``.

    Defaults: the paper's latent (AudioLDM2 VAE, 8 channels) and text width (FLAN-T5-large,
    1024) for both unless the CPU preset's own are given.
    """
    cpu_c = cpu_latent_channels or latent_channels
    cpu_x = cpu_cross_attention_dim or cross_attention_dim
    return {
        "paper": count_parameters(build_unet(unet_config("paper", latent_channels, cross_attention_dim))),
        "cpu": count_parameters(build_unet(unet_config("cpu", cpu_c, cpu_x))),
    }
