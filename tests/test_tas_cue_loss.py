"""The TAS interaural-cue loss: band ILDs of a window's spectra, the loss, its place in the total."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tas_codec import _pair
from test_tas_train import TINY, _train, data  # noqa: F401  (the module's dataset fixture)

from baselines.tas.codec import AudioLDM2Codec, Codec, RelativeSTFTCodec
from baselines.tas.diffusion import make_train_scheduler
from baselines.tas.losses import band_ild_loss, total_loss, window_band_ild
from baselines.tas.train import resolve_config
from evaluators.localiser import N_BANDS, band_edges
from tas_bench.runtime.errors import TasBenchError

SR = 16000


def _mono_diff(n: int, seed: int, gain: float = 0.5, delay: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    return _pair(n, seed, delay=delay, gain=gain)


def test_band_ild_of_a_pure_gain_difference() -> None:
    # d = g m: L = (1 + g) m / 2, R = (1 - g) m / 2, so every band has 20 log10((1+g)/(1-g))
    m = torch.randn(1, 257, 10, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    for g in (0.5, -0.25):
        ild, active = window_band_ild(m, g * m, 512, SR)
        assert ild.shape == (1, N_BANDS) and bool(active.all())
        assert torch.allclose(ild, torch.full_like(ild, 20 * math.log10((1 + g) / (1 - g))), atol=1e-9)


def test_band_ild_hand_case_one_bin() -> None:
    # one bin at 1 kHz: M = 1, D = 0.5 -> L = 0.75, R = 0.25, 10 log10(9) dB in its band only
    m = torch.zeros(1, 257, 3, dtype=torch.complex128)
    k = 32  # 32 * 16000 / 512 = 1000 Hz
    m[0, k, 1] = 1.0
    ild, active = window_band_ild(m, 0.5 * m, 512, SR)
    band = int(np.searchsorted(band_edges(SR), 1000.0, side="right") - 1)
    assert active[0].nonzero().flatten().tolist() == [band]
    assert float(ild[0, band]) == pytest.approx(10 * math.log10(9), abs=1e-6)


def test_diff_spectrum_is_the_stft_of_d_and_of_m() -> None:
    c = RelativeSTFTCodec()
    m, d = _mono_diff(c.window_samples(8), 1)
    dspec, mspec = c.diff_spectrum(c.encode_diff(d, m), m)
    want_d, want_m = c._stft(d[0].double()), c._stft(m[0].double())
    assert torch.allclose(mspec[0], want_m)
    assert float((dspec[0] - want_d).abs().max()) < 1e-5 * float(want_d.abs().max())


def test_magnitude_codecs_have_no_difference_spectrum() -> None:
    assert AudioLDM2Codec.diff_spectrum is Codec.diff_spectrum
    with pytest.raises(TasBenchError, match="magnitudes only"):
        Codec.diff_spectrum(AudioLDM2Codec.__new__(AudioLDM2Codec), torch.zeros(1), torch.zeros(1, 4))


def test_band_ild_loss_is_zero_on_target_and_differentiable() -> None:
    c = RelativeSTFTCodec()
    m, d = _mono_diff(c.window_samples(8), 2)
    z0 = c.encode_diff(d, m)
    assert float(band_ild_loss(c, z0, z0, m)[0]) == pytest.approx(0.0, abs=1e-9)
    z = (z0 + 0.3 * torch.randn(z0.shape, generator=torch.Generator().manual_seed(0))).requires_grad_(True)
    loss = band_ild_loss(c, z, z0, m)
    assert float(loss.detach()[0]) > 0.1
    loss.sum().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and float(z.grad.abs().sum()) > 0


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), gain=st.floats(0.1, 0.9), delay=st.integers(0, 12))
def test_swapping_the_ears_negates_every_band_ild(seed: int, gain: float, delay: int) -> None:
    # -d is the mirrored scene: the loss of -z0 against z0 is twice the mean |band ILD|
    c = RelativeSTFTCodec()
    m, d = _mono_diff(c.window_samples(8), seed, gain, delay)
    z0 = c.encode_diff(d, m)
    dspec, mspec = c.diff_spectrum(z0, m)
    ild, active = window_band_ild(mspec, dspec, c.n_fft, SR)
    want = 2 * ild[0][active[0]].abs().mean()
    assert float(band_ild_loss(c, -z0, z0, m)[0]) == pytest.approx(float(want), rel=1e-6)


def _losses(cue_weight: float, cond_dropout: float) -> dict[str, torch.Tensor]:
    c = RelativeSTFTCodec()
    ms, ds = zip(*(_mono_diff(c.window_samples(8), s) for s in range(3)))
    m, d = torch.cat(ms), torch.cat(ds)
    z0, zm = c.encode_diff(d, m), c.encode_mono(m)
    text, mask = torch.ones(3, 2, 4), torch.ones(3, 2, dtype=torch.bool)

    def denoiser(x: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor, msk: torch.Tensor) -> torch.Tensor:
        return 0.5 * x[:, : z0.shape[1]]

    return total_loss(denoiser, make_train_scheduler(), z0, zm, text, mask,
                      generator=torch.Generator().manual_seed(3), cond_dropout=cond_dropout,
                      cue_weight=cue_weight,
                      cue_fn=(lambda zh, z: band_ild_loss(c, zh, z, m)) if cue_weight else None)


def test_total_loss_adds_the_weighted_cue_term_and_skips_dropped_pairs() -> None:
    off, on = _losses(0.0, 0.0), _losses(0.5, 0.0)
    assert float(off["cue"]) == 0.0 and float(off["cue_db"]) == 0.0
    assert torch.equal(off["total"], off["diffusion"])
    assert torch.equal(on["diffusion"], off["diffusion"])  # the same draws
    assert float(on["cue"]) > 0 and float(on["cue_db"]) > 0
    assert float(on["total"]) == pytest.approx(float(on["diffusion"] + 0.5 * on["cue"]), rel=1e-6)
    dropped = _losses(0.5, 1.0)
    assert float(dropped["dropped"]) == 3
    assert float(dropped["cue"]) == 0.0 and float(dropped["cue_db"]) == 0.0
    with pytest.raises(ValueError, match="cue_fn"):
        total_loss(lambda x, t, a, b: x[:, :2], make_train_scheduler(), torch.zeros(1, 2, 2, 2),
                   torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 4), torch.ones(1, 1, dtype=torch.bool),
                   generator=torch.Generator().manual_seed(0), cue_weight=1.0)


def test_cue_weight_config_is_checked_and_recorded() -> None:
    assert resolve_config("tas")["cue_weight"] == 0.0
    assert resolve_config("tas", overrides={"cue_weight": 0.5})["cue_weight"] == 0.5
    with pytest.raises(TasBenchError, match="cue_weight"):
        resolve_config("tas", overrides={"cue_weight": -1.0})
    with pytest.raises(TasBenchError, match="relstft"):
        resolve_config("tas", overrides={"preset": "paper", "cue_weight": 0.5})


def test_a_cue_loss_run_logs_the_band_ild_error(data, tmp_path) -> None:  # noqa: F811
    _train(data, tmp_path / "run", cue_weight=0.5)
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    head = rows[0].split(",")
    cue = [r.split(",")[head.index("cue_db")] for r in rows[1:]]
    assert len(cue) == TINY["steps"] // 2 and all(math.isfinite(float(v)) and float(v) > 0 for v in cue)
