"""Interaural cues, the localiser and the cue evaluator."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.base import ClipInput
from evaluators.cues import SpatialCueEvaluator, hrtf_spec, is_localisable
from evaluators.localiser import (
    N_BANDS,
    SIDE_ILD_DB,
    SIDE_ITD_S,
    Cues,
    Localiser,
    band_edges,
    interaural_cues,
    lateral_decision,
)
from evaluators.registry import EVALUATORS
from tas_bench.data.geometry import direction_words
from tas_bench.data.hrtf import KNOWN_HRTFS, Hrtf
from tas_bench.data.manifest import Dataset, parse_clip
from tas_bench.runtime.errors import TasBenchError

FS = 16000
HAVE_KEMAR = Path(KNOWN_HRTFS["kemar"]).is_file()


def _noise(n: int = FS, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def _delayed_pair(k: int, n: int = FS, seed: int = 0) -> np.ndarray:
    """Right channel = left channel delayed by k samples (k > 0: left leads)."""
    s = _noise(n + abs(k), seed)
    if k >= 0:
        return np.stack([s[k:], s[: n]])
    return np.stack([s[: n], s[-k:]])


def _frac_delay(x: np.ndarray, d: float) -> np.ndarray:
    """Delay x by d samples (circularly, in the frequency domain)."""
    n = len(x)
    f = np.fft.rfftfreq(n)
    return np.fft.irfft(np.fft.rfft(x) * np.exp(-2j * np.pi * f * d), n=n)


def _clip(cid: str = "c0", category: str = "single_doa_de", az: float = 60.0,
          el: float = 10.0, n_sources: int = 1, hrtf: dict | None = None):
    src = {"label": "noise", "azimuth": az, "elevation": el, "distance": 2.0,
           "direction": list(direction_words(az, el)),
           "provenance": {"package": "tests", "file": "generated", "licence": "CC0"}}
    obj = {"id": cid, "split": "test", "audio": f"a/{cid}.wav", "sample_rate": FS,
           "duration": 1.0, "category": category,
           "sources": [dict(src) for _ in range(n_sources)], "prompt": "", "prompt_type": None,
           "qa": [], "hrtf": hrtf, "room": None, "seed": None}
    problems: list = []
    clip = parse_clip(obj, 1, problems)
    assert clip is not None, problems
    return clip


# ---- cue primitives -------------------------------------------------------------------------
@pytest.mark.parametrize("k", [-12, -5, -1, 0, 2, 7, 16])
def test_pure_delay_gives_itd(k: int) -> None:
    c = interaural_cues(_delayed_pair(k), FS)
    assert c.itd_s * FS == pytest.approx(k, abs=0.1)
    assert c.ic == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("d", [2.5, -3.3, 0.4])
def test_fractional_delay_within_a_quarter_sample(d: float) -> None:
    s = _noise(8000, 1)
    x = np.stack([s, _frac_delay(s, d)])
    assert interaural_cues(x, FS).itd_s * FS == pytest.approx(d, abs=0.25)


def test_delays_beyond_one_ms_are_clipped_to_the_window() -> None:
    c = interaural_cues(_delayed_pair(40), FS)
    assert abs(c.itd_s) <= 1e-3 + 1e-12


@pytest.mark.parametrize("g", [0.25, 0.5, 1.0, 3.0])
def test_ild_of_scaled_channel(g: float) -> None:
    s = _noise()
    c = interaural_cues(np.stack([g * s, s]), FS)
    assert c.ild_db == pytest.approx(20 * math.log10(g), abs=1e-6)
    np.testing.assert_allclose(c.band_ild_db, 20 * math.log10(g), atol=1e-6)


def test_band_edges() -> None:
    e = band_edges(FS)
    assert len(e) == N_BANDS + 1 and e[0] == pytest.approx(100) and e[-1] == pytest.approx(8000)
    assert np.allclose(e[1:] / e[:-1], 80 ** (1 / 19))
    assert band_edges(8000)[-1] == pytest.approx(4000)


def test_band_ild_undefined_where_the_band_is_empty() -> None:
    s = _noise()
    spec = np.fft.rfft(s)
    spec[np.fft.rfftfreq(len(s), 1 / FS) > 500] = 0
    low = np.fft.irfft(spec, n=len(s))
    c = interaural_cues(np.stack([low, 0.5 * low]), FS)
    e = band_edges(FS)
    assert np.all(np.isfinite(c.band_ild_db[e[1:] < 400]))
    assert np.all(np.isnan(c.band_ild_db[e[:-1] > 3000]))


def test_coherence() -> None:
    a, b = _noise(seed=1), _noise(seed=2)
    assert interaural_cues(np.stack([a, b]), FS).ic < 0.1
    assert interaural_cues(np.stack([a, -a]), FS).ic < 0.1
    mix = np.stack([a, 0.6 * a + 0.8 * b])  # correlation 0.6
    assert interaural_cues(mix, FS).ic == pytest.approx(0.6, abs=0.05)


def test_silence_gives_nan_not_a_crash() -> None:
    z = np.zeros((2, 4000))
    c = interaural_cues(z, FS)
    assert math.isnan(c.itd_s) and math.isnan(c.ild_db) and math.isnan(c.ic)
    assert np.all(np.isnan(c.band_ild_db))
    one = np.stack([_noise(4000), np.zeros(4000)])
    c = interaural_cues(one, FS)
    assert math.isnan(c.itd_s) and math.isnan(c.ic)
    assert math.isfinite(c.ild_db) and c.ild_db > 60


@pytest.mark.parametrize("shape", [(4000,), (1, 4000), (3, 4000), (2, 0)])
def test_bad_shapes(shape: tuple) -> None:
    with pytest.raises(TasBenchError):
        interaural_cues(np.zeros(shape), FS)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(-16, 16), st.floats(0.1, 10.0))
def test_swapping_ears_flips_itd_and_ild(seed: int, k: int, g: float) -> None:
    x = _delayed_pair(k, 4000, seed) * np.array([[g], [1.0]])
    a, b = interaural_cues(x, FS), interaural_cues(x[::-1].copy(), FS)
    assert a.itd_s == pytest.approx(-b.itd_s, abs=1e-9)
    assert a.ild_db == pytest.approx(-b.ild_db, abs=1e-9)
    np.testing.assert_allclose(a.band_ild_db, -b.band_ild_db, atol=1e-9)
    assert a.ic == pytest.approx(b.ic, abs=1e-9)


# ---- a fake HRTF: spherical-head ITD, lateral ILD with a front/back spectral tilt ------------
def _fake_hrtf() -> Hrtf:
    az = np.array([a for el in (-30.0, 0.0, 30.0) for a in np.arange(-170.0, 190.0, 20.0)])
    el = np.array([e for e in (-30.0, 0.0, 30.0) for _ in np.arange(-170.0, 190.0, 20.0)])
    taps, base = 256, 64
    hrir = np.zeros((len(az), 2, taps))
    f = np.fft.rfftfreq(taps)
    for m, (a, e) in enumerate(zip(az, el)):
        lat = math.asin(math.sin(math.radians(a)) * math.cos(math.radians(e)))
        itd = 0.0875 / 343.0 * (lat + math.sin(lat)) * FS  # samples, left leads when lat > 0
        front = math.cos(math.radians(a)) >= 0
        tilt = (1.0 if front else 0.3) + 0.5 * e / 30.0
        ild = 6.0 * math.sin(lat) * (1.0 + tilt * f / f.max())  # dB, rising with frequency
        for ear, sign in ((0, 1.0), (1, -1.0)):
            delay = base - sign * itd / 2
            spec = np.exp(-2j * np.pi * f * delay) * 10 ** (sign * ild / 40)
            hrir[m, ear] = np.fft.irfft(spec, n=taps)
    return Hrtf(name="fake", path="/nonexistent/fake.sofa", sha256="0" * 64, sample_rate=FS,
                azimuth=az, elevation=el, distance=1.0, hrir=hrir)


def _render(hrir: np.ndarray, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    s = _noise(int(seconds * FS), seed)
    return np.stack([scipy.signal.fftconvolve(s, hrir[ch])[: len(s)] for ch in range(2)])


def test_localiser_recovers_fake_template_directions() -> None:
    h = _fake_hrtf()
    loc = Localiser.from_hrtf(h, FS)
    assert loc.name == "fake" and loc.sha256 == "0" * 64
    i90 = int(np.argmin(np.abs(h.azimuth - 90) + np.abs(h.elevation)))
    assert loc.itd_s[i90] > 500e-6  # left source: left ear leads, positive ITD
    for m in range(0, len(h.azimuth), 5):
        got = loc.localise(_render(h.hrir[m], 0.5, m))
        assert got == (h.azimuth[m], h.elevation[m])


def test_localiser_rejects_rate_mismatch_and_silence() -> None:
    h = _fake_hrtf()
    with pytest.raises(TasBenchError):
        Localiser.from_hrtf(h, 48000)
    loc = Localiser.from_hrtf(h)
    assert loc.localise(np.zeros((2, 1000))) is None
    assert loc.words(np.zeros((2, 1000))) is None


@pytest.mark.skipif(not HAVE_KEMAR, reason="libmysofa1 KEMAR not installed")
def test_localiser_on_kemar_renders() -> None:
    from tas_bench.data.hrtf import load_hrtf

    h = load_hrtf("kemar", FS)
    loc = Localiser.from_hrtf(h, FS)
    lateral = octant = 0
    dirs = [(60, 0), (-60, 0), (120, 0), (-120, 0), (30, 20), (-30, 20), (150, -20),
            (-150, -20), (80, 40), (-100, 10)]
    for i, (az, el) in enumerate(dirs):
        m = h.nearest(az, el)
        words = loc.words(_render(h.hrir[m], 0.5, i))
        truth = direction_words(h.azimuth[m], h.elevation[m])
        assert words is not None
        lateral += words[0] == truth[0]
        octant += words == truth
    assert lateral == len(dirs)
    assert octant >= 0.7 * len(dirs)


# ---- the left/right decision ---------------------------------------------------------------
def _cues(itd_us: float, ild_db: float) -> Cues:
    return Cues(itd_us / 1e6, ild_db, np.full(N_BANDS, ild_db), 1.0)


@pytest.mark.parametrize(("itd_us", "ild_db", "side"), [
    (0.0, 0.0, None),          # no cue: undecided
    (29.0, 0.99, None),        # both below threshold
    (29.0, -0.99, None),
    (30.0, 0.0, "left"),       # ITD alone, at the threshold
    (-30.0, 0.0, "right"),
    (0.0, 1.0, "left"),        # ILD alone, at the threshold
    (0.0, -1.0, "right"),
    (200.0, 5.0, "left"),      # both, agreeing
    (-200.0, -2.8, "right"),
    (200.0, -5.0, None),       # both clear, contradicting
    (-40.0, 1.5, None),
    (200.0, -0.9, "left"),     # a sub-threshold ILD of the other sign does not vote
    (-10.0, -2.8, "right"),    # a sub-threshold ITD of the other sign does not vote
    (math.nan, -3.0, "right"),  # NaN cues do not vote
    (math.nan, math.nan, None),
])
def test_lateral_decision_hand_cases(itd_us: float, ild_db: float, side: str | None) -> None:
    assert SIDE_ILD_DB == 1.0 and SIDE_ITD_S == 30e-6
    assert lateral_decision(_cues(itd_us, ild_db)) == side


@settings(max_examples=50, deadline=None)
@given(st.floats(-1000, 1000), st.floats(-30, 30))
def test_lateral_decision_is_mirror_symmetric(itd_us: float, ild_db: float) -> None:
    side = lateral_decision(_cues(itd_us, ild_db))
    mirror = lateral_decision(_cues(-itd_us, -ild_db))
    assert mirror == {"left": "right", "right": "left", None: None}[side]
    if side is not None:  # a decision always follows the sign of every clear cue
        sign = 1 if side == "left" else -1
        assert not (abs(itd_us) >= 30 and sign * itd_us < 0)
        assert not (abs(ild_db) >= 1 and sign * ild_db < 0)


def test_identical_channels_are_undecided_on_any_head() -> None:
    loc = Localiser.from_hrtf(_fake_hrtf(), FS)
    s = _noise(8000, 3)
    j = loc.judge(interaural_cues(np.stack([s, s]), FS))
    assert j is not None and j.side is None and j.words is None
    assert loc.localise(np.stack([s, s])) is None and loc.words(np.stack([s, s])) is None


def test_clear_ild_overrules_the_templates() -> None:
    """ILD -2.8 dB with a sub-threshold ITD of the other sign (+18 us) is 'right'; the nearest
    template (version 1.0's answer) is on the left, because of the small ITD."""
    loc = Localiser.from_hrtf(_fake_hrtf(), FS)
    s = _noise(8000, 4)
    x = np.stack([10 ** (-2.8 / 20) * s, _frac_delay(s, 0.4)])
    c = interaural_cues(x, FS)
    assert 0 < c.itd_s < SIDE_ITD_S and c.ild_db == pytest.approx(-2.8, abs=0.05)
    nearest = int(np.argmin(loc.scores(c)))
    assert loc.azimuth[nearest] > 0  # the template matcher alone says left
    words = loc.words(x)
    assert words is not None and words[0] == "right"
    az, _el = loc.localise(x)
    assert -180.0 < az < 0.0  # the octant template is taken on the decided side


# ---- evaluator ------------------------------------------------------------------------------
def _fake_evaluator(**kw) -> SpatialCueEvaluator:
    ev = SpatialCueEvaluator(**kw)
    ev._localisers["fake"] = Localiser.from_hrtf(_fake_hrtf(), FS)
    ev._resolved = "fake"
    return ev


def test_evaluator_identical_pred_ref() -> None:
    ev = _fake_evaluator()
    h = _fake_hrtf()
    m = int(np.argmin(np.abs(h.azimuth - 50) + np.abs(h.elevation)))
    x = _render(h.hrir[m])
    clip = _clip(az=float(h.azimuth[m]), el=0.0)
    out = ev.process_batch([ClipInput(clip, x, x.copy(), FS)])[0].values
    for k in ("itd_error_us", "ild_error_db", "ild_band_error_db", "ic_error"):
        assert out[k] == pytest.approx(0.0, abs=1e-9)
    assert out["itd_pred_us"] == out["itd_ref_us"] > 0
    assert out["ild_pred_db"] == out["ild_ref_db"] > 0
    assert out["lr_correct"] == out["lr_correct_ref"] == 1.0
    assert out["octant_correct"] == out["octant_correct_ref"] == 1.0
    assert set(out) == {m.name for m in SpatialCueEvaluator.metrics}


def test_evaluator_mirrored_prediction() -> None:
    ev = _fake_evaluator()
    x = _delayed_pair(6) * np.array([[1.0], [0.5]])
    clip = _clip(az=60.0, el=10.0)
    out = ev.process_batch([ClipInput(clip, x[::-1].copy(), x, FS)])[0].values
    assert out["itd_error_us"] == pytest.approx(2 * 6 / FS * 1e6, abs=0.2 / FS * 1e6)
    expected = 2 * interaural_cues(x, FS).ild_db  # about 2 x 6 dB
    assert out["ild_error_db"] == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(2 * 20 * math.log10(2), abs=0.1)
    assert out["lr_correct"] == 0.0 and out["lr_correct_ref"] == 1.0
    assert out["octant_correct"] == 0.0
    assert out["lr_undecided"] == out["lr_undecided_ref"] == 0.0  # wrong, but decided


def test_evaluator_contradicting_cues_are_undecided() -> None:
    ev = _fake_evaluator()
    x = _delayed_pair(6) * np.array([[0.5], [1.0]])  # left leads by 375 us, right 6 dB louder
    out = ev.process_batch([ClipInput(_clip(az=60.0), x, x, FS)])[0].values
    assert out["lr_undecided"] == out["lr_undecided_ref"] == 1.0
    assert out["lr_correct"] == out["octant_correct"] == out["lr_correct_ref"] == 0.0


def test_localiser_values_only_for_single_source_clips() -> None:
    ev = _fake_evaluator()
    x = _delayed_pair(4)
    for clip in (_clip(category="double_doa_de", n_sources=2), _clip(category="real", n_sources=0),
                 _clip(category="relative_direction", n_sources=2)):
        assert not is_localisable(clip)
        out = ev.process_batch([ClipInput(clip, x, x, FS)])[0].values
        assert all(math.isnan(out[k]) for k in ("lr_correct", "octant_correct", "lr_correct_ref",
                                                "octant_correct_ref", "lr_undecided",
                                                "lr_undecided_ref"))
        assert out["itd_error_us"] == pytest.approx(0.0)


def test_evaluator_silent_prediction() -> None:
    ev = _fake_evaluator()
    x = _delayed_pair(4)
    out = ev.process_batch([ClipInput(_clip(), np.zeros_like(x), x, FS)])[0].values
    for k in ("itd_error_us", "ild_error_db", "ild_band_error_db", "ic_error", "itd_pred_us",
              "lr_correct", "octant_correct", "lr_undecided"):
        assert math.isnan(out[k]), k
    assert out["lr_correct_ref"] == 1.0 and out["lr_undecided_ref"] == 0.0


def test_check_requirements_and_config(tmp_path: Path) -> None:
    real = Dataset(tmp_path, [_clip(category="real", n_sources=0)], {})
    ev = SpatialCueEvaluator()
    assert ev.check_requirements(real) is None
    assert ev.config()["hrtf"] is None  # nothing to localise: no HRTF needed

    missing = Dataset(tmp_path, [_clip(hrtf={"name": "mine", "path": str(tmp_path / "no.sofa")})], {})
    reason = SpatialCueEvaluator().check_requirements(missing)
    assert reason and "no.sofa" in reason

    mixed = Dataset(tmp_path, [_clip("a", hrtf={"name": "kemar"}),
                               _clip("b", hrtf={"name": "x", "path": "/x.sofa"})], {})
    assert "several HRTFs" in (SpatialCueEvaluator().check_requirements(mixed) or "")


@pytest.mark.skipif(not HAVE_KEMAR, reason="libmysofa1 KEMAR not installed")
def test_kemar_resolution_and_sha_check(tmp_path: Path) -> None:
    from tas_bench.data.hrtf import load_hrtf

    sha = load_hrtf("kemar", FS).sha256
    ok = Dataset(tmp_path, [_clip(hrtf={"name": "kemar", "sha256": sha}), _clip("d", hrtf=None)], {})
    ev = SpatialCueEvaluator()
    assert ev.check_requirements(ok) is None
    assert ev.config()["hrtf"] == {"name": "kemar", "sha256": sha, "override": False}

    bad = Dataset(tmp_path, [_clip(hrtf={"name": "kemar", "sha256": "f" * 64})], {})
    assert "sha256" in (SpatialCueEvaluator().check_requirements(bad) or "")
    forced = SpatialCueEvaluator(hrtf="kemar")
    assert forced.check_requirements(bad) is None
    assert forced.config()["hrtf"]["override"] is True


def test_hrtf_spec() -> None:
    assert hrtf_spec(_clip(hrtf=None)) == "kemar"
    assert hrtf_spec(_clip(hrtf={"name": "KEMAR", "path": "/elsewhere.sofa"})) == "kemar"
    assert hrtf_spec(_clip(hrtf={"name": "subj3", "path": "/h/subj3.sofa"})) == "/h/subj3.sofa"
    assert hrtf_spec(_clip(hrtf={"name": "sphere:0.09", "path": "sphere:0.09"})) == "sphere:0.09"
    assert hrtf_spec(_clip(hrtf={"name": "Sphere:0.09"})) == "sphere:0.09"


def test_version_and_config_record_the_side_rule() -> None:
    assert SpatialCueEvaluator.version == "1.1"
    side = SpatialCueEvaluator().config()["localiser"]["side"]
    assert side["ild_db"] == 1.0 and side["itd_s"] == 30e-6
    specs = {m.name: m for m in SpatialCueEvaluator.metrics}
    assert not specs["lr_undecided"].higher_is_better and not specs["lr_undecided_ref"].higher_is_better


@pytest.mark.parametrize("kw", [{"hrtf": 3}, {"hrtf": ""}, {"bands": 10}])
def test_bad_options(kw: dict) -> None:
    with pytest.raises(TasBenchError):
        SpatialCueEvaluator(**kw)


def test_wrong_rate_is_rejected() -> None:
    ev = _fake_evaluator()
    x = _delayed_pair(2)
    with pytest.raises(TasBenchError, match="Hz"):
        ev.process_batch([ClipInput(_clip(), x, x, 22050)])


def test_registered_and_specs() -> None:
    assert EVALUATORS.get("cues") is SpatialCueEvaluator
    specs = {m.name: m for m in SpatialCueEvaluator.metrics}
    assert specs["lr_correct"].higher_is_better and not specs["itd_error_us"].higher_is_better
    assert all(m.per_clip for m in specs.values())
    assert SpatialCueEvaluator.needs[0] == "sources"


# ---- end to end through the scoring runner ---------------------------------------------------
@pytest.mark.skipif(not HAVE_KEMAR, reason="libmysofa1 KEMAR not installed")
@pytest.mark.parametrize("mode", ["copy", "mono"])
def test_scoring_runner_end_to_end(tmp_path: Path, mode: str) -> None:
    from datagen import make_dataset, write_predictions

    from tas_bench.pipeline.scoring import ScoreOptions, score

    data, pred = tmp_path / "data", tmp_path / "pred"
    recs = make_dataset(data, n=4)  # noise at +-60 degrees: near ear leads by 8 samples, far -6 dB
    write_predictions(pred, data, recs, mode=mode)
    summary = score(ScoreOptions(data=data, pred=pred, out=tmp_path / "out",
                                 evaluators=["signal", "cues"], progress=False,
                                 cache_dir=tmp_path / "cache"))
    assert summary.n_valid == 4 and not summary.skipped
    m = summary.metrics
    assert m["lr_correct_ref"]["mean"] == 1.0 and m["lr_correct_ref"]["evaluator"] == "cues"
    assert m["itd_ref_us"]["n"] == 4
    if mode == "copy":
        assert m["lr_correct"]["mean"] == 1.0
        # not an HRTF render (flat 6 dB ILD), so only the lateral word is meaningful here
        assert m["octant_correct"]["mean"] == m["octant_correct_ref"]["mean"]
        assert m["itd_error_us"]["mean"] == 0.0 and m["ic_error"]["mean"] == 0.0
        assert m["stft"]["mean"] == 0.0 and m["snr"]["mean"] > 20
    else:  # the mono mix has no interaural difference: ITD 0, error = the reference's |ITD|
        assert m["itd_pred_us"]["mean"] == pytest.approx(0.0, abs=1.0)
        assert m["itd_error_us"]["mean"] == pytest.approx(8 / FS * 1e6, abs=10.0)
        assert m["ild_error_db"]["mean"] == pytest.approx(20 * math.log10(2), abs=0.2)
        # no interaural cue at all: undecided (counted as not correct), not "left" by a tie rule
        assert m["lr_correct"]["mean"] == 0.0 and m["octant_correct"]["mean"] == 0.0
        assert m["lr_undecided"]["mean"] == 1.0
    assert m["lr_undecided_ref"]["mean"] == 0.0


def test_descriptive_and_ceiling_names_exist() -> None:
    from evaluators.cues import CEILING_METRICS, DESCRIPTIVE_METRICS

    names = {m.name for m in SpatialCueEvaluator.metrics}
    assert set(DESCRIPTIVE_METRICS) <= names
    assert set(CEILING_METRICS) | set(CEILING_METRICS.values()) <= names
