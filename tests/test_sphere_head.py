"""The built-in spherical head (``--hrtf sphere[:radius]``): spec parsing, the HRTF object the
simulator uses, ILD/ITD signs, ITD against Woodworth, the sphere's symmetries, end to end."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.localiser import interaural_cues
from tas_bench.data import sphere_head as sh
from tas_bench.data.hrtf import load_hrtf
from tas_bench.data.source_corpus import TARGET_RMS, SourceCorpus, SourceItem, spec_from_file
from tas_bench.runtime.errors import TasBenchError

FS = 16000
#: GCC-PHAT ITD of the model's HRIRs vs Woodworth: the head-shadow filters' phase delays the far
#: ear a little more at low frequencies (Brown and Duda; the rigid sphere's low-frequency ITD
#: is up to 1.5 x Woodworth's), so the measured ITD is Woodworth's plus at most this much.
ITD_TOL_S = {16000: 30e-6, 48000: 15e-6}


def _noise(n: int = FS, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def _render(ir: np.ndarray, seed: int = 0) -> np.ndarray:
    s = _noise(FS, seed)
    return np.stack([scipy.signal.fftconvolve(s, ir[ch])[:FS] for ch in range(2)])


# ---- spec -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "radius"), [("sphere", 0.0875), ("SPHERE", 0.0875),
                                              ("sphere:0.1", 0.1), ("Sphere:0.0700", 0.07),
                                              (Path("sphere"), 0.0875), ("kemar", None),
                                              ("/x/sphere.sofa", None), ("spheres", None)])
def test_parse_spec(spec, radius) -> None:
    assert sh.parse_sphere_spec(spec) == radius
    assert sh.is_sphere_spec(spec) == (radius is not None)


@pytest.mark.parametrize("spec", ["sphere:", "sphere:abc", "sphere:0", "sphere:-0.09",
                                  "sphere:nan", "sphere:inf", "sphere:1.0", "sphere:0.01"])
def test_bad_radius_is_a_user_error(spec: str) -> None:
    with pytest.raises(TasBenchError, match="radius") as err:
        load_hrtf(spec, FS)
    assert "--hrtf" in str(err.value)


# ---- the HRTF object ------------------------------------------------------------------------
def test_loads_as_the_simulators_hrtf_object() -> None:
    h = load_hrtf("sphere", FS)
    assert h.name == h.path == "sphere:0.0875" and h.sample_rate == FS
    assert len(h.sha256) == 64 and int(h.sha256, 16) >= 0
    assert h.sha256 == sh.stable_hash(sh.sphere_identity(0.0875))
    # KEMAR-style grid: elevations -40..80 every 10 degrees x azimuth every 5 degrees, plus the pole
    assert len(h.azimuth) == 13 * 72 + 1 and h.hrir.shape == (937, 2, h.taps)
    assert sorted(set(h.elevation.tolist())) == [float(e) for e in range(-40, 100, 10)]
    assert h.azimuth.min() > -180.0 and h.azimuth.max() <= 180.0
    assert np.all(np.isfinite(h.hrir)) and not h.hrir.flags.writeable
    assert load_hrtf("sphere:0.0875", FS) is h  # cached, same identity
    # the identity names the model and its parameters, not the rate it is rendered at
    h48 = load_hrtf("sphere", 48000)
    assert h48.sha256 == h.sha256 and h48.taps > h.taps
    other = load_hrtf("sphere:0.1", FS)
    assert other.sha256 != h.sha256 and other.name == "sphere:0.1"
    info = h.info()
    assert info["name"] == "sphere:0.0875" and info["directions"] == 937
    json.dumps(info)


def test_version_is_part_of_the_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    a = sh.stable_hash(sh.sphere_identity(0.0875))
    monkeypatch.setattr(sh, "MODEL_VERSION", "999")
    assert sh.stable_hash(sh.sphere_identity(0.0875)) != a


# ---- cues -----------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [16000, 48000])
def test_left_louder_and_earlier_at_plus_90(rate: int) -> None:
    h = load_hrtf("sphere", rate)
    left = interaural_cues(h.hrir[h.nearest(90.0, 0.0)], rate)
    right = interaural_cues(h.hrir[h.nearest(-90.0, 0.0)], rate)
    assert left.ild_db > 6.0 and left.itd_s > 600e-6  # left ear louder and leading
    assert right.ild_db < -6.0 and right.itd_s < -600e-6
    assert left.itd_s == pytest.approx(-right.itd_s, abs=1e-9)
    assert left.ild_db == pytest.approx(-right.ild_db, abs=1e-9)
    front = interaural_cues(h.hrir[h.nearest(0.0, 0.0)], rate)
    assert abs(front.itd_s) < 1e-9 and abs(front.ild_db) < 1e-9


def test_signs_on_a_rendered_noise() -> None:
    h = load_hrtf("sphere", FS)
    for az, sign in ((90.0, 1), (-90.0, -1), (45.0, 1), (-135.0, -1)):
        c = interaural_cues(_render(h.hrir[h.nearest(az, 0.0)]), FS)
        assert sign * c.itd_s > 200e-6 and sign * c.ild_db > 3.0, az


@pytest.mark.parametrize("az", [0.0, 10.0, 20.0, 30.0, 45.0, 60.0, 75.0, 90.0])
def test_model_delays_are_exactly_woodworth(az: float) -> None:
    """The two ears' arrival times differ by (a / c)(theta + sin theta), theta the lateral angle."""
    for el in (0.0, 30.0):
        th_l, th_r = sh.incidence_angles(az, el)
        itd = sh.ear_delay(th_r) - sh.ear_delay(th_l)
        theta = math.asin(math.cos(math.radians(el)) * math.sin(math.radians(az)))
        assert itd == pytest.approx(0.0875 / 343.0 * (theta + math.sin(theta)), abs=1e-12)
        assert itd == pytest.approx(sh.woodworth_itd(az, el), abs=1e-12)


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize("az", [10.0, 30.0, 45.0, 60.0, 80.0, 90.0, -30.0, -90.0, 120.0])
def test_gcc_phat_itd_matches_woodworth(rate: int, az: float) -> None:
    h = load_hrtf("sphere", rate)
    got = interaural_cues(h.hrir[h.nearest(az, 0.0)], rate).itd_s
    want = sh.woodworth_itd(az, 0.0)
    # never less than Woodworth (the far ear is shadowed), but for the parabolic peak's bias
    assert abs(got) >= abs(want) - 5e-6
    assert got == pytest.approx(want, abs=ITD_TOL_S[rate])


def test_larger_head_larger_itd() -> None:
    itds = [interaural_cues(load_hrtf(f"sphere:{a}", FS).hrir[load_hrtf(f"sphere:{a}", FS)
                                                                 .nearest(60.0, 0.0)], FS).itd_s
            for a in (0.07, 0.0875, 0.11)]
    assert itds[0] < itds[1] < itds[2]
    assert itds[2] == pytest.approx(sh.woodworth_itd(60.0, 0.0, 0.11), abs=35e-6)


def test_shadow_constants_as_published() -> None:
    assert sh.shadow_alpha(0.0) == pytest.approx(2.0)  # +6 dB at high frequencies facing the ear
    assert sh.shadow_alpha(math.radians(150.0)) == pytest.approx(0.1)  # -20 dB at 150 degrees
    f = np.array([0.0, 1e6])
    h = sh.shadow_response(f, 0.0)
    assert abs(h[0]) == pytest.approx(1.0) and abs(h[1]) == pytest.approx(2.0, rel=1e-3)


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize(("az", "theta_deg"), [(90.0, 0.0), (0.0, 90.0), (-60.0, 150.0),
                                               (-90.0, 180.0)])
def test_left_ear_response_is_the_analogue_shadow_filter(rate: int, az: float,
                                                         theta_deg: float) -> None:
    """|HRIR| of the left ear equals |H(w, theta)| of Brown and Duda within 0.5 dB up to 0.8 x
    Nyquist (designed at 96 kHz, so the bilinear warping does not bend the shelf)."""
    h = load_hrtf("sphere", rate)
    ir = h.hrir[h.nearest(az, 0.0)][0]
    f = np.fft.rfftfreq(8192, 1 / rate)
    got = np.abs(np.fft.rfft(ir, 8192))
    want = np.abs(sh.shadow_response(f, math.radians(theta_deg)))
    band = (f > 50) & (f < 0.8 * rate / 2)
    np.testing.assert_array_less(np.abs(20 * np.log10(got[band] / want[band])), 0.5)


# ---- symmetries of a sphere -----------------------------------------------------------------
_ELS = [float(e) for e in range(-40, 90, 10)]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 71), st.sampled_from(_ELS))
def test_front_back_up_down_and_mirror_symmetry(k: int, el: float) -> None:
    """A sphere with ears at +-90 degrees has no front/back or up/down cue: the HRIR at azimuth
    a equals the one at 180 - a (and at -el, inside the grid); -a is the mirror image."""
    h = load_hrtf("sphere", FS)
    az = float(k * 5 - 175)
    here = h.hrir[h.nearest(az, el)]
    back = h.hrir[h.nearest(180.0 - az, el)]
    np.testing.assert_allclose(back, here, atol=1e-12)
    if abs(el) <= 40.0:
        np.testing.assert_allclose(h.hrir[h.nearest(az, -el)], here, atol=1e-12)
    mirror = h.hrir[h.nearest(-az, el)]
    np.testing.assert_allclose(mirror[::-1], here, atol=1e-12)
    # every grid point is itself a direction of the set (nearest is exact)
    i = h.nearest(az, el)
    assert h.elevation[i] == el and (h.azimuth[i] - az) % 360.0 == 0.0


# ---- end to end -----------------------------------------------------------------------------
def _corpus(tmp: Path) -> SourceCorpus:
    rng = np.random.default_rng(3)
    items = []
    for label in ("noise", "hiss", "rumble"):
        x = rng.standard_normal(int(1.5 * FS))
        x = (x * TARGET_RMS / np.sqrt(np.mean(x**2))).astype(np.float32)
        items.append(SourceItem(spec=spec_from_file(tmp / f"{label}.wav", label, licence="CC0"),
                                split="test", audio=x, sha256="0" * 64, sample_rate=FS))
    return SourceCorpus(items=items, config={"test": True})


def test_simulate_cli_with_the_sphere_then_score(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from datagen import write_predictions

    from tas_bench.data.manifest import load_dataset
    from tas_bench.data.validate import validate_dataset
    from tas_bench.pipeline.cli import main
    from tas_bench.pipeline.scoring import ScoreOptions, score

    simmod = importlib.import_module("tas_bench.data.simulate")
    monkeypatch.setattr(simmod, "build_corpus", lambda sample_rate: _corpus(tmp_path))
    data = tmp_path / "data"
    assert main(["simulate", "--hrtf", "sphere", "--n-train", "0", "--n-val", "0",
                 "--n-test", "4", "--duration", "1", "--out", str(data), "--quiet",
                 "--workers", "1"]) == 0
    assert "simulated 4 clip(s)" in capsys.readouterr().out
    n, problems = validate_dataset(data)
    assert n == 4 and problems == []
    want = load_hrtf("sphere", FS)
    info = json.loads((data / "dataset.json").read_text())
    assert info["hrtf"]["name"] == "sphere:0.0875" and info["hrtf"]["sha256"] == want.sha256
    clips = load_dataset(data).clips
    assert all(c.hrtf["name"] == "sphere:0.0875" and c.hrtf["sha256"] == want.sha256
               for c in clips)
    # the cue evaluator finds the sphere from the manifest and checks its identity
    recs = [json.loads(ln) for ln in (data / "manifest.jsonl").read_text().splitlines()]
    write_predictions(tmp_path / "pred", data, recs, mode="copy")
    summary = score(ScoreOptions(data=data, pred=tmp_path / "pred", out=tmp_path / "out",
                                 evaluators=["cues"], progress=False, cache_dir=tmp_path / "cache"))
    assert not summary.skipped and summary.metrics["lr_correct_ref"]["mean"] == 1.0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "sphere:0.0875" in json.dumps(doc)

    assert main(["simulate", "--hrtf", "sphere:2", "--n-test", "1", "--out",
                 str(tmp_path / "bad"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "radius" in err and "Traceback" not in err
