"""TAS codecs: the exact relstft codec and the AudioLDM2 codec with randomly initialised parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.tas.codec import (
    AUDIOLDM2_SCALING_FACTOR,
    AudioLDM2Codec,
    RelativeSTFTCodec,
    build_codec,
    check_audioldm2_folder,
    log_mel,
)
from tas_bench.runtime.errors import TasBenchError

SR = 16000


def _noise(n: int, seed: int, scale: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


def _pair(n: int, seed: int, delay: int = 6, gain: float = 0.6) -> tuple[torch.Tensor, torch.Tensor]:
    s = np.random.default_rng(seed).standard_normal(n + delay) * 0.1
    left, right = s[delay:], gain * s[:n]
    return (torch.tensor(left + right, dtype=torch.float32)[None],
            torch.tensor(left - right, dtype=torch.float32)[None])


# ---------------------------------------------------------------------------- relstft


def test_relstft_shapes_and_window_length() -> None:
    c = RelativeSTFTCodec()
    n = c.window_samples(32)
    assert n == (32 * 4 - 1) * 256  # 128 centred STFT frames
    m, d = _pair(n, 0)
    z = c.encode_diff(d, m)
    assert z.shape == (1, 32, 32, 64) == (1, *c.latent_shape(32)) and z.dtype == torch.float32
    assert c.encode_mono(m).shape == z.shape
    assert c.latent_channels == 32 and c.latent_width == 64


def test_relstft_round_trip_is_exact_given_the_mono() -> None:
    c = RelativeSTFTCodec(fold=2)
    n = c.window_samples(16)
    m, d = _pair(n, 1)
    back = c.decode_diff(c.encode_diff(d, m), m)
    assert back.shape == d.shape
    assert float((back - d).abs().max()) <= 1e-6 * float(d.abs().max())


def test_relstft_hand_cases() -> None:
    c = RelativeSTFTCodec(fold=1, scale=1.0)
    n = c.window_samples(8)
    m = torch.tensor(_noise(n, 2))[None]
    assert float(c.encode_diff(torch.zeros_like(m), m).abs().max()) == 0.0  # d = 0 -> z = 0
    # R = 0 (d = m): z = |M| / E is real and non-negative; the Nyquist bin rides in Im of bin 0
    z = c.encode_diff(m.clone(), m)
    assert float(z[0, 1, :, 1:].abs().max()) < 1e-6
    assert float(z[0, 0].min()) >= -1e-6
    # -d gives -z (the codec is linear in d): a left/right swap is visible in the latent
    m2, d2 = _pair(n, 3)
    assert torch.allclose(c.encode_diff(-d2, m2), -c.encode_diff(d2, m2))


def test_relstft_is_bounded_at_the_notches_of_the_mix() -> None:
    # a pure 500 us delay, equal levels: |M| has notches where D/M = i tan(w tau / 2) blows up
    c = RelativeSTFTCodec(fold=1, scale=1.0)
    n = c.window_samples(8)
    m, d = _pair(n, 4, delay=8, gain=1.0)
    z = c.encode_diff(d, m)
    ms = torch.stft(m[0].double(), 512, 256, 512, torch.hann_window(512, dtype=torch.float64),
                    return_complex=True)
    ds = torch.stft(d[0].double(), 512, 256, 512, torch.hann_window(512, dtype=torch.float64),
                    return_complex=True)
    ratio = (ds.abs() / ms.abs().clamp(min=1e-12)).max()
    assert float(ratio) > 100.0  # the plain ratio explodes
    assert float(z.abs().max()) < 20.0  # the envelope-relative latent does not


def test_relstft_keeps_itd_when_pooled_over_time() -> None:
    """For a static anechoic source the latent is ~constant over time: averaging all of its
    frames still gives the ITD (unlike the pooled ratio D/M, REFERENCE §5)."""
    from evaluators.localiser import interaural_cues

    c = RelativeSTFTCodec()
    n = c.window_samples(32)
    m, d = _pair(n, 5, delay=8, gain=0.7)
    z = c.encode_diff(d, m)
    zp = z.mean(2, keepdim=True).expand_as(z).contiguous()
    dp = c.decode_diff(zp, m)[0].double().numpy()
    mm = m[0].double().numpy()
    itd = interaural_cues(np.stack([(mm + dp) / 2, (mm - dp) / 2]), SR).itd_s
    assert abs(itd * 1e6 - 500.0) < 5.0


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), level=st.floats(1e-4, 2.0), fold=st.sampled_from([1, 2, 4]))
def test_relstft_round_trip_property(seed: int, level: float, fold: int) -> None:
    c = RelativeSTFTCodec(fold=fold)
    n = c.window_samples(8)
    rng = np.random.default_rng(seed)
    left, right = rng.standard_normal((2, n)) * level
    m = torch.tensor(left + right, dtype=torch.float32)[None]
    d = torch.tensor(left - right, dtype=torch.float32)[None]
    back = c.decode_diff(c.encode_diff(d, m), m)
    assert float((back - d).abs().max()) <= 2e-6 * float(d.abs().max())


def test_relstft_batch_rows_are_independent() -> None:
    c = RelativeSTFTCodec()
    n = c.window_samples(8)
    ms, ds = zip(*(_pair(n, s) for s in range(3)))
    m, d = torch.cat(ms), torch.cat(ds)
    z = c.encode_diff(d, m)
    assert torch.equal(z[1:2], c.encode_diff(d[1:2], m[1:2]))
    assert torch.equal(c.encode_mono(m)[2:], c.encode_mono(m[2:]))


def test_relstft_bad_configs_and_shapes() -> None:
    with pytest.raises(TasBenchError, match="fold 3 must divide"):
        RelativeSTFTCodec(fold=3)
    with pytest.raises(TasBenchError, match="hop"):
        RelativeSTFTCodec(hop=400)
    with pytest.raises(TasBenchError, match="unknown relstft codec field"):
        build_codec({"type": "relstft", "nfft": 512})
    with pytest.raises(TasBenchError, match="unknown codec type"):
        build_codec({"type": "mp3"})
    c = RelativeSTFTCodec()
    m, _ = _pair(c.window_samples(8), 0)
    with pytest.raises(TasBenchError, match="does not fit"):
        c.decode_diff(torch.zeros(1, 8, 8, 64), m)
    with pytest.raises(TasBenchError, match="frames"):
        c.decode_diff(torch.zeros(1, 32, 16, 64), m)


def test_roundtrip_measure_on_a_dataset(tmp_path: Path) -> None:
    from datagen import make_dataset

    from baselines.tas.roundtrip import measure_roundtrip

    make_dataset(tmp_path / "d", n=2, seconds=2.5, split="train")
    res = measure_roundtrip(RelativeSTFTCodec(), str(tmp_path / "d"), split="train",
                            latent_frames=8, overlap_s=0.1)
    assert res["clips"] == 2
    assert res["itd_error_us"]["max"] < 0.1
    assert res["stft"]["max"] < 1e-10
    assert res["d_rel_error"]["max"] < 1e-5


# ---------------------------------------------------------------------------- audioldm2


def make_audioldm2_snapshot(folder: Path, *, small: bool = True) -> Path:
    """Randomly initialised AudioLDM2 VAE + vocoder of the snapshot's configs (narrower widths
    when ``small``), saved in the cvssp/audioldm2 layout."""
    diffusers = pytest.importorskip("diffusers")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(
        in_channels=1, out_channels=1, latent_channels=8,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(32, 32, 64) if small else (128, 256, 512),
        layers_per_block=1 if small else 2, norm_num_groups=32, sample_size=1024,
        scaling_factor=AUDIOLDM2_SCALING_FACTOR)
    vae.save_pretrained(str(folder / "vae"))
    cfg = transformers.SpeechT5HifiGanConfig(
        model_in_dim=64, sampling_rate=16000, upsample_initial_channel=32 if small else 1024,
        upsample_rates=[5, 4, 2, 2, 2], upsample_kernel_sizes=[16, 16, 8, 4, 4],
        resblock_kernel_sizes=[3, 7, 11], resblock_dilation_sizes=[[1, 3, 5]] * 3,
        normalize_before=False)
    transformers.SpeechT5HifiGan(cfg).save_pretrained(str(folder / "vocoder"))
    return folder


def test_log_mel_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    x = _noise(8000, 7, 0.3)
    ours = log_mel(torch.tensor(x)[None])[0, 0].numpy()  # (frames, 64)
    mel = librosa.feature.melspectrogram(y=x.astype(np.float64), sr=SR, n_fft=1024, hop_length=160,
                                         win_length=1024, window="hann", center=True,
                                         pad_mode="reflect", power=1.0, n_mels=64, fmin=0.0,
                                         fmax=8000.0, htk=False, norm="slaney")
    ref = np.log(np.maximum(mel, 1e-5)).T
    assert ours.shape == ref.shape == (8000 // 160 + 1, 64)
    np.testing.assert_allclose(ours, ref, atol=2e-4)
    silent = log_mel(torch.zeros(1, 1600))
    assert float(silent.max()) == pytest.approx(np.log(1e-5))


def test_audioldm2_codec_with_random_parts(tmp_path: Path) -> None:
    root = make_audioldm2_snapshot(tmp_path / "audioldm2")
    c = AudioLDM2Codec(root)
    assert c.latent_channels == 8 and c.latent_width == 16 and c.down == 4
    assert c.scaling_factor == pytest.approx(AUDIOLDM2_SCALING_FACTOR)
    n = c.window_samples(8)  # 32 mel frames
    assert n == 32 * 160
    m = torch.tensor(np.stack([_noise(n, 1), _noise(n, 2)]))
    mel = log_mel(m)
    assert mel.shape == (2, 1, 33, 64)  # (B, 1, T, F); the codec drops the extra centred frame
    z = c.encode_mono(m)
    assert z.shape == (2, 8, 8, 16)  # (B, 8, T/4, 16)
    assert torch.equal(c.encode_diff(m, m * 0), z)  # the mel codec ignores the mono for d
    assert torch.equal(c.encode_diff(-m, m), z)  # ... and cannot see the sign of d
    assert torch.equal(c.encode_mono(m[1:]), z[1:])  # one window at a time: batch-invariant
    assert c.decode_mel(z).shape == (2, 1, 32, 64)
    y = c.decode_diff(z, m)
    assert y.shape == (2, n) and torch.isfinite(y).all()
    assert c.fingerprint() and build_codec({"type": "audioldm2", "path": str(root)}).fingerprint() == c.fingerprint()
    assert c.config() == {"type": "audioldm2", "path": str(root)}


def test_audioldm2_missing_or_incomplete_folder(tmp_path: Path) -> None:
    with pytest.raises(TasBenchError, match="AudioLDM2 folder not found.*vae/.*vocoder/") as e:
        check_audioldm2_folder(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)
    root = tmp_path / "snap"
    (root / "vae").mkdir(parents=True)
    (root / "vae" / "config.json").write_text(json.dumps({}))
    with pytest.raises(TasBenchError, match="missing vae/diffusion_pytorch_model.safetensors, "
                                            "vocoder/config.json, vocoder/model.safetensors"):
        AudioLDM2Codec(root)
    with pytest.raises(TasBenchError, match="needs a path"):
        build_codec({"type": "audioldm2"})
    # present but not loadable: one line naming the folder
    for sub, name in (("vae", "diffusion_pytorch_model.safetensors"), ("vocoder", "config.json"),
                      ("vocoder", "model.safetensors")):
        (root / sub).mkdir(exist_ok=True)
        (root / sub / name).write_bytes(b"not a weights file")
    with pytest.raises(TasBenchError, match="cannot load the AudioLDM2 VAE and vocoder") as e:
        AudioLDM2Codec(root)
    assert "\n" not in str(e.value)
