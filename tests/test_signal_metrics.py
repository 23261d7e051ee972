"""Signal metrics: hand-computed cases, equality with the per-file reference, invariants."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.base import ClipInput
from evaluators.registry import EVALUATORS
from evaluators.signal import (
    SignalEvaluator,
    envelope,
    hann_window,
    signal_metrics_batch,
    stft,
    stft_mean_power,
)
from tas_bench.data.manifest import parse_clip
from tas_bench.runtime.errors import TasBenchError

_REF_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_signal.py"
_spec = importlib.util.spec_from_file_location("reference_signal", _REF_PATH)
assert _spec is not None and _spec.loader is not None
_ref_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ref_mod)
reference_signal_metrics = _ref_mod.reference_signal_metrics

KEYS = ("stft", "env", "wav", "snr", "mag", "phase")


def _clip(cid: str = "c0", category: str = "real"):
    obj = {"id": cid, "split": "test", "audio": f"a/{cid}.wav", "sample_rate": 16000,
           "duration": 1.0, "category": category, "sources": [], "prompt": "",
           "prompt_type": None, "qa": [], "hrtf": None, "room": None, "seed": None}
    problems: list = []
    clip = parse_clip(obj, 1, problems)
    assert clip is not None, problems
    return clip


def _one(pred: np.ndarray, gt: np.ndarray, **kw) -> dict[str, float]:
    vals = signal_metrics_batch(pred[None], gt[None], **kw)
    return {k: float(v[0]) for k, v in vals.items()}


def _assert_close(a: dict[str, float], b: dict[str, float], rel: float = 1e-6) -> None:
    for k in KEYS:
        assert a[k] == pytest.approx(b[k], rel=rel, abs=1e-12), k


# ---- building blocks ----------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:n_fft=512 is too large")
@pytest.mark.parametrize("n", [100, 257, 1000, 16000, 16001])
@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_stft_equals_librosa(n: int, pad_mode: str) -> None:
    x = np.random.default_rng(n).standard_normal(n)
    ours = stft(x, pad_mode=pad_mode)
    ref = librosa.stft(x, n_fft=512, hop_length=160, win_length=400, window="hann",
                       center=True, pad_mode=pad_mode)
    assert ours.shape == ref.shape
    assert np.max(np.abs(ours - ref)) <= 1e-9 * np.max(np.abs(ref))


def test_window_is_librosa_window() -> None:
    w = scipy.signal.get_window("hann", 400, fftbins=True)
    expected = np.zeros(512)
    expected[56:456] = w
    np.testing.assert_allclose(hann_window(400, 512), expected, atol=1e-15)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 1001, 16000])
def test_envelope_equals_scipy_hilbert(n: int) -> None:
    x = np.random.default_rng(n).standard_normal((2, n))
    np.testing.assert_allclose(envelope(x), np.abs(scipy.signal.hilbert(x, axis=-1)),
                               rtol=1e-10, atol=1e-12)


# ---- hand-computed values -------------------------------------------------------------------
def test_identical_gives_zero_distances_and_snr_of_power() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8000))
    v = _one(x, x.copy())
    for k in ("stft", "env", "wav", "mag", "phase"):
        assert v[k] == pytest.approx(0.0, abs=1e-12)
    xn = x / np.abs(x).max()
    p = float(np.mean(xn**2))
    assert v["snr"] == pytest.approx(10 * math.log10((p + 1e-4) / 1e-4), rel=1e-12)


def test_known_snr_and_wav() -> None:
    n = 1000
    gt = np.full((2, n), 0.5)
    noise = 0.1 * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    pred = gt + noise  # mean squared error exactly 0.01
    v = _one(pred, gt, normalize=False)
    assert v["snr"] == pytest.approx(10 * math.log10((0.25 + 1e-4) / (0.01 + 1e-4)), rel=1e-12)
    assert v["wav"] == pytest.approx(1e3 * (0.01 + 0.01), rel=1e-12)


def test_wav_on_hand_made_arrays() -> None:
    pred = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0]])
    gt = np.zeros((2, 4))
    v = _one(pred, gt, normalize=False)
    assert v["wav"] == pytest.approx(1e3 * (1.0 / 4 + 0.25 / 4))
    # with normalisation the prediction's peak becomes 1 (already is), gt stays 0
    assert _one(pred, gt)["wav"] == pytest.approx(1e3 * (1.0 / 4 + 0.25 / 4))


def test_env_of_am_tone() -> None:
    n, fc, fm, m = 4000, 400, 10, 0.5  # whole numbers of cycles: the DFT envelope is exact
    t = np.arange(n)
    env = 1.0 + m * np.cos(2 * np.pi * fm * t / n)
    tone = env * np.cos(2 * np.pi * fc * t / n)
    gt = np.stack([tone, tone])
    v = _one(np.zeros_like(gt), gt, normalize=False)
    assert v["env"] == pytest.approx(2 * math.sqrt(1 + m * m / 2), rel=1e-9)
    # two pure tones of amplitudes a and b: E_c = |a - b|
    c = np.cos(2 * np.pi * fc * t / n)
    v = _one(np.stack([0.3 * c, 0.3 * c]), np.stack([0.8 * c, 0.8 * c]), normalize=False)
    assert v["env"] == pytest.approx(2 * 0.5, rel=1e-9)


def test_stft_distance_of_an_impulse() -> None:
    n, n0 = 4000, 2003
    gt = np.zeros((2, n))
    pred = gt.copy()
    pred[0, n0] = 1.0
    v = _one(pred, gt, normalize=False, pad_mode="constant")
    w = hann_window(400, 512)
    frames = 1 + n // 160
    # frame t covers padded samples t*160 .. t*160+511, i.e. signal samples t*160-256 ..
    sq = sum(w[n0 + 256 - t * 160] ** 2 for t in range(frames) if 0 <= n0 + 256 - t * 160 < 512)
    # every one of the 257 bins has |X| = w: mean over (Re, Im) x F x T of diff^2
    assert v["stft"] == pytest.approx(sq / (2 * frames), rel=1e-9)
    assert v["mag"] == pytest.approx(2 * v["stft"], rel=1e-12)


def test_silent_prediction_or_reference_is_finite() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3000))
    z = np.zeros((2, 3000))
    for pred, gt in ((z, x), (x, z), (z, z)):
        for norm in (True, False):
            v = _one(pred, gt, normalize=norm)
            assert all(math.isfinite(v[k]) for k in KEYS), v
            ref = reference_signal_metrics(pred, gt, normalize=norm)
            _assert_close(v, ref)
    assert _one(z, z)["snr"] == pytest.approx(0.0)


def test_mono_prediction_phase_matches_reference() -> None:
    rng = np.random.default_rng(4)
    gt = rng.standard_normal((2, 5000))
    mono = np.tile(rng.standard_normal(5000), (2, 1))
    _assert_close(_one(mono, gt), reference_signal_metrics(mono, gt))
    _assert_close(_one(gt, mono), reference_signal_metrics(gt, mono))


# ---- equality with the per-file reference ---------------------------------------------------
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_evaluator_equals_reference_on_mixed_lengths(normalize: bool, pad_mode: str) -> None:
    rng = np.random.default_rng(5)
    lengths = [16000, 4001, 16000, 999, 4001, 16000]
    batch = []
    for i, n in enumerate(lengths):
        gt = rng.standard_normal((2, n)) * rng.uniform(0.01, 3)
        pred = gt * rng.uniform(0.2, 2) + rng.standard_normal((2, n)) * rng.uniform(0, 1)
        batch.append(ClipInput(_clip(f"c{i}"), pred, gt, 16000))
    ev = SignalEvaluator(normalize=normalize, pad_mode=pad_mode)
    outs = ev.process_batch(batch)
    assert len(outs) == len(batch)
    for item, out in zip(batch, outs):
        ref = reference_signal_metrics(item.pred, item.ref, normalize=normalize, pad_mode=pad_mode)
        _assert_close(out.values, ref)


def test_batch_equals_one_by_one_beyond_a_chunk() -> None:
    rng = np.random.default_rng(6)
    n = 160000  # several chunks of CHUNK_SAMPLES
    pred = rng.standard_normal((5, 2, n))
    gt = pred + 0.5 * rng.standard_normal((5, 2, n))
    vals = signal_metrics_batch(pred, gt)
    for i in range(5):
        one = _one(pred[i], gt[i])
        for k in KEYS:
            assert vals[k][i] == pytest.approx(one[k], rel=1e-12)
    ref = reference_signal_metrics(pred[4], gt[4])
    _assert_close({k: float(vals[k][4]) for k in KEYS}, ref)


# ---- configuration --------------------------------------------------------------------------
def test_config_records_options() -> None:
    cfg = SignalEvaluator().config()
    assert cfg["normalize"] is True and cfg["pad_mode"] == "reflect"
    assert (cfg["n_fft"], cfg["hop_length"], cfg["win_length"]) == (512, 160, 400)
    assert cfg["sample_rate"] == 16000
    cfg = SignalEvaluator(normalize=False, pad_mode="constant").config()
    assert cfg["normalize"] is False and cfg["pad_mode"] == "constant"
    assert EVALUATORS.get("signal") is SignalEvaluator


@pytest.mark.parametrize("kw", [
    {"normalize": "yes"}, {"pad_mode": "edge"}, {"n_fft": 0}, {"hop_length": 1.5},
    {"win_length": 600}, {"n_fft": True}, {"window": "hamming"},
])
def test_bad_options_are_rejected(kw: dict) -> None:
    with pytest.raises(TasBenchError):
        SignalEvaluator(**kw)


def test_bad_shapes_are_rejected() -> None:
    ev = SignalEvaluator()
    with pytest.raises(TasBenchError, match="c0"):
        ev.process_batch([ClipInput(_clip(), np.zeros((2, 100)), np.zeros((2, 90)), 16000)])
    with pytest.raises(TasBenchError):
        signal_metrics_batch(np.zeros((1, 1, 100)), np.zeros((1, 1, 100)))


def test_metric_specs() -> None:
    specs = {m.name: m for m in SignalEvaluator.metrics}
    assert set(specs) == set(KEYS)
    assert specs["snr"].higher_is_better
    assert not any(specs[k].higher_is_better for k in KEYS if k != "snr")


# ---- properties -----------------------------------------------------------------------------
_pairs = st.tuples(st.integers(0, 2**31 - 1), st.integers(300, 3000),
                   st.floats(0.0, 2.0), st.floats(0.01, 10.0))


def _make(seed: int, n: int, noise: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = rng.standard_normal((2, n)) * scale
    pred = rng.standard_normal((2, n)) * noise * scale + gt * rng.uniform(-1, 1)
    return pred, gt


@settings(max_examples=25, deadline=None)
@given(_pairs)
def test_symmetry_and_non_negativity(args: tuple) -> None:
    pred, gt = _make(*args)
    a, b = _one(pred, gt), _one(gt, pred)
    for k in ("stft", "env", "wav", "mag", "phase"):
        assert a[k] >= 0.0
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12)
    assert 0.0 <= a["phase"] <= math.pi + 1e-12


@settings(max_examples=25, deadline=None)
@given(_pairs)
def test_swapping_ears_of_both_changes_nothing(args: tuple) -> None:
    pred, gt = _make(*args)
    a, b = _one(pred, gt), _one(pred[::-1].copy(), gt[::-1].copy())
    for k in KEYS:
        assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12), k


@settings(max_examples=25, deadline=None)
@given(_pairs, st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_scale_invariance_with_normalisation(args: tuple, cp: float, cg: float) -> None:
    pred, gt = _make(*args)
    a, b = _one(pred, gt), _one(pred * cp, gt * cg)
    for k in KEYS:
        assert a[k] == pytest.approx(b[k], rel=1e-8, abs=1e-12), k


@pytest.mark.parametrize(("n_fft", "win"), [(512, 400), (511, 300), (256, 256)])
@pytest.mark.parametrize("pad_mode", ["reflect", "constant"])
def test_parseval_stft_power_equals_fft_power(n_fft: int, win: int, pad_mode: str) -> None:
    x = np.random.default_rng(7).standard_normal((3, 5000))
    direct = (np.abs(librosa.stft(x, n_fft=n_fft, hop_length=160, win_length=win,
                                  pad_mode=pad_mode)) ** 2).mean(axis=(-2, -1))
    np.testing.assert_allclose(stft_mean_power(x, n_fft, 160, win, pad_mode), direct, rtol=1e-10)


def test_threads_option_changes_nothing_and_is_restored() -> None:
    import torch

    rng = np.random.default_rng(8)
    pred, gt = rng.standard_normal((2, 2, 2, 3000))
    before = torch.get_num_threads()
    a = signal_metrics_batch(pred, gt, threads=1)
    b = signal_metrics_batch(pred, gt, threads=2)
    assert torch.get_num_threads() == before
    for k in KEYS:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12)
    assert SignalEvaluator(threads=2).config() == SignalEvaluator().config()
    with pytest.raises(TasBenchError):
        SignalEvaluator(threads=0)


def test_per_clip_values_do_not_depend_on_batch_composition() -> None:
    """Sharded scoring must give the same bits as unsharded: a clip's values may not depend on
    which other clips share its batch."""
    from evaluators.cues import SpatialCueEvaluator

    rng = np.random.default_rng(3)
    pred = rng.standard_normal((6, 2, 4000)) * 0.1
    gt = rng.standard_normal((6, 2, 4000)) * 0.1
    kw = dict(normalize=True, pad_mode="reflect", n_fft=512, hop_length=160, win_length=400)
    whole = signal_metrics_batch(pred, gt, **kw)
    for idx in ([0], [1, 3], [2, 4, 5]):
        part = signal_metrics_batch(pred[idx], gt[idx], **kw)
        for k, v in part.items():
            assert np.array_equal(v, whole[k][idx]), k
    ev = SpatialCueEvaluator()
    clips = [_clip(f"c{i}") for i in range(6)]
    items = [ClipInput(clips[i], pred[i], gt[i], 16000) for i in range(6)]
    all_out = ev.process_batch(items)
    some = ev.process_batch(items[2:4])
    for a, b in zip(all_out[2:4], some):
        assert a.values.keys() == b.values.keys()
        for k in a.values:
            assert np.array_equal(a.values[k], b.values[k], equal_nan=True), k


def test_thread_count_does_not_change_values() -> None:
    rng = np.random.default_rng(5)
    pred = rng.standard_normal((3, 2, 8000)) * 0.1
    gt = rng.standard_normal((3, 2, 8000)) * 0.1
    one = signal_metrics_batch(pred, gt, threads=1)
    two = signal_metrics_batch(pred, gt, threads=2)
    for k in one:
        assert np.array_equal(one[k], two[k]), k


# ---- zero-magnitude convention of the phase distance -----------------------------------------
def test_phase_of_zero_bins_does_not_depend_on_signed_zeros() -> None:
    """An exactly zero L - R bin has angle 0 whatever the signs of its zeros (FFT-library
    dependent): -0.0 - 0.0j would be -pi under np.angle, +0.0 + 0.0j would be 0."""
    import torch

    from evaluators.signal import _phase_distance

    ref = torch.complex(torch.tensor([[1.0, -1.0], [0.5, 2.0]], dtype=torch.float64),
                        torch.tensor([[0.3, 0.2], [-0.1, 0.0]], dtype=torch.float64))
    zeros = {sign: torch.complex(torch.full((2, 2), sign * 0.0, dtype=torch.float64),
                                 torch.full((2, 2), sign * 0.0, dtype=torch.float64))
             for sign in (1.0, -1.0)}
    pos = float(_phase_distance(zeros[1.0], ref))
    neg = float(_phase_distance(zeros[-1.0], ref))
    assert pos == neg
    # hand-computed: mean of |angle(ref)| since every zero bin has angle 0
    expected = float(np.mean(np.abs(np.angle(ref.numpy()))))
    assert pos == pytest.approx(expected, rel=1e-12)


def test_phase_floor_is_relative_to_the_clip() -> None:
    """A bin at most 1e-9 of the clip's largest magnitude counts as zero; scaling the clip
    does not change the value."""
    import torch

    from evaluators.signal import PHASE_FLOOR_REL, _phase_distance

    re = torch.tensor([[1.0, 0.5 * PHASE_FLOOR_REL]], dtype=torch.float64)
    im = torch.tensor([[0.0, -0.5 * PHASE_FLOOR_REL]], dtype=torch.float64)  # angle -pi/4, tiny
    a = torch.complex(re, im)
    b = torch.complex(torch.ones(1, 2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64))
    assert float(_phase_distance(a, b)) == 0.0
    assert float(_phase_distance(a * 1e6, b)) == 0.0
    a2 = torch.complex(re, im * 4)  # magnitude now above the floor: angle counts
    assert float(_phase_distance(a2, b)) > 0.0


def test_signal_version_records_the_phase_convention() -> None:
    from evaluators.signal import PHASE_FLOOR_REL, SignalEvaluator

    ev = SignalEvaluator()
    assert ev.version == "1.1"
    assert ev.config()["phase_floor_rel"] == PHASE_FLOOR_REL == 1e-9
