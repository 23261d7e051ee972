"""TAS denoiser presets: the paper's U-Net structure, the CPU preset, parameter counts."""

from __future__ import annotations

import math

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


def test_frequency_channels_hand_values() -> None:
    from baselines.tas.unet import frequency_channels

    f = frequency_channels(3, 4)  # x = 1/8, 3/8, 5/8, 7/8
    assert f.shape == (3, 4) and f.dtype == torch.float32
    torch.testing.assert_close(f[0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    c = [math.cos(math.pi * x) for x in (0.125, 0.375, 0.625, 0.875)]
    torch.testing.assert_close(f[1], torch.tensor(c))
    torch.testing.assert_close(f[2], torch.tensor([math.cos(2 * math.pi * x) for x in (0.125, 0.375, 0.625, 0.875)]))
    assert frequency_channels(0, 4).shape == (0, 4)


def test_freq_channels_widen_the_input_and_are_appended_by_the_denoiser() -> None:
    from baselines.tas.diffusion import unet_denoiser
    from baselines.tas.unet import extra_input_channels, frequency_channels

    spec = {"block_out_channels": [8, 8, 16, 16], "layers_per_block": 1, "heads": 2,
            "norm_num_groups": 8, "freq_channels": 4}
    cfg = unet_config(spec, 2, 8)
    assert cfg["in_channels"] == 2 * 2 + 4 and cfg["out_channels"] == 2
    assert "freq_channels" not in cfg  # not a diffusers argument
    torch.manual_seed(0)
    unet = build_unet(cfg).eval()
    assert extra_input_channels(unet) == 4
    x, t = torch.randn(2, 4, 8, 16), torch.tensor([500, 500])
    text, mask = torch.randn(2, 3, 8), torch.ones(2, 3)
    pos = frequency_channels(4, 16)[None, :, None, :].expand(2, 4, 8, 16)
    with torch.no_grad():
        y = unet_denoiser(unet)(x, t, text, mask)
        want = unet(torch.cat([x, pos], 1), t, encoder_hidden_states=text,
                    encoder_attention_mask=mask).sample
    assert y.shape == (2, 2, 8, 16) and torch.equal(y, want)
    assert extra_input_channels(build_unet(unet_config({**spec, "freq_channels": 0}, 2, 8))) == 0
    with pytest.raises(TasBenchError, match="freq_channels"):
        unet_config({**spec, "freq_channels": -1}, 2, 8)


def test_text_class_embed_feeds_the_pooled_tokens() -> None:
    from baselines.tas.diffusion import unet_denoiser

    spec = {"block_out_channels": [8, 8, 16, 16], "layers_per_block": 1, "heads": 2,
            "norm_num_groups": 8, "text_class_embed": True}
    cfg = unet_config(spec, 2, 8)
    assert cfg["class_embed_type"] == "projection" and cfg["projection_class_embeddings_input_dim"] == 8
    assert "class_embed_type" not in unet_config({**spec, "text_class_embed": False}, 2, 8)
    torch.manual_seed(0)
    unet = build_unet(cfg).eval()
    x, t = torch.randn(2, 4, 8, 16), torch.tensor([500, 500])
    text = torch.randn(2, 3, 8)
    mask = torch.tensor([[True, True, False], [True, True, True]])
    pooled = torch.stack([text[0, :2].mean(0), text[1].mean(0)])  # masked mean
    with torch.no_grad():
        y = unet_denoiser(unet)(x, t, text, mask)
        want = unet(x, t, encoder_hidden_states=text, encoder_attention_mask=mask,
                    class_labels=pooled).sample
        other = unet_denoiser(unet)(x, t, text.flip(0), mask.flip(0))
    torch.testing.assert_close(y, want)
    assert not torch.allclose(y, other)
    with pytest.raises(TasBenchError, match="text_class_embed"):
        unet_config({**spec, "text_class_embed": 1}, 2, 8)
