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
"""

from __future__ import annotations

from typing import Any

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
    return {
        "in_channels": 2 * int(latent_channels),
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


def build_unet(config: dict[str, Any]) -> Any:
    """A randomly initialised ``UNet2DConditionModel`` from :func:`unet_config`'s output."""
    try:
        from diffusers import UNet2DConditionModel
    except ImportError:
        raise TasBenchError("the TAS denoiser needs diffusers installed (`pip install diffusers`)") from None
    return UNet2DConditionModel(**config)


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
