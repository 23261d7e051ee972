"""TAS denoiser presets: the paper's U-Net structure, the CPU preset, parameter counts."""

from __future__ import annotations

import pytest
import torch

from baselines.tas.unet import PRESETS, build_unet, count_parameters, parameter_counts, unet_config
from tas_bench.runtime.errors import TasBenchError

pytest.importorskip("diffusers")


def _attention_layout(unet: torch.nn.Module) -> tuple[list[bool], list[bool]]:
    down = [bool(getattr(b, "attentions", None)) for b in unet.down_blocks]
    up = [bool(getattr(b, "attentions", None)) for b in unet.up_blocks]
    return down, up


def test_paper_config() -> None:
    cfg = unet_config("paper", latent_channels=8, cross_attention_dim=1024)
    assert cfg["in_channels"] == 16 and cfg["out_channels"] == 8  # concat(noisy d, mono)
    assert cfg["block_out_channels"] == [128, 256, 384, 640]
    assert cfg["down_block_types"] == ["DownBlock2D"] + ["CrossAttnDownBlock2D"] * 3
    assert cfg["up_block_types"] == ["CrossAttnUpBlock2D"] * 3 + ["UpBlock2D"]
    assert cfg["mid_block_type"] == "UNetMidBlock2DCrossAttn"
    assert cfg["attention_head_dim"] == 8 and cfg["cross_attention_dim"] == 1024
    assert cfg["layers_per_block"] == 2


def test_paper_unet_structure_and_counts() -> None:
    unet = build_unet(unet_config("paper", 8, 1024))
    assert len(unet.down_blocks) == 4 and len(unet.up_blocks) == 4 and unet.mid_block is not None
    assert _attention_layout(unet) == ([False, True, True, True], [True, True, True, False])
    for block, width in zip(unet.down_blocks[1:], (256, 384, 640)):
        attn = block.attentions[0].transformer_blocks[0]
        assert attn.attn1.heads == 8 and attn.attn2.heads == 8  # diffusers: attention_head_dim = heads
        assert attn.attn2.to_k.in_features == 1024 and attn.attn1.to_q.out_features == width
    assert unet.mid_block.attentions[0].transformer_blocks[0].attn2.heads == 8
    n = count_parameters(unet)
    assert 150e6 < n < 250e6
    counts = parameter_counts(8, 1024)
    assert counts["paper"] == n and counts["cpu"] < n / 20


def test_cpu_preset_has_the_same_structure_and_runs() -> None:
    unet = build_unet(unet_config("cpu", 32, 64)).eval()
    assert _attention_layout(unet) == ([False, True, True, True], [True, True, True, False])
    assert [b.resnets[0].out_channels for b in unet.down_blocks] == PRESETS["cpu"]["block_out_channels"]
    x = torch.randn(1, 64, 8, 16)
    with torch.no_grad():
        y = unet(x, torch.tensor([3]), encoder_hidden_states=torch.randn(1, 5, 64),
                 encoder_attention_mask=torch.ones(1, 5)).sample
    assert y.shape == (1, 32, 8, 16)


def test_bad_presets() -> None:
    with pytest.raises(TasBenchError, match="unknown denoiser preset"):
        unet_config("huge", 8, 64)
    with pytest.raises(TasBenchError, match="4 widths"):
        unet_config({"block_out_channels": [32, 64, 96]}, 8, 64)
    with pytest.raises(TasBenchError, match="divisible"):
        unet_config({"block_out_channels": [32, 48, 64, 100]}, 8, 64)
