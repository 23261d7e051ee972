"""HRTF loading: KEMAR, synthetic SOFA files written here (other heads), bad files."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tas_bench.data.geometry import great_circle_deg
from tas_bench.data.hrtf import load_hrtf
from tas_bench.runtime.errors import TasBenchError


def write_sofa(path: Path, *, convention: str = "SimpleFreeFieldHRIR", rate: float = 48000.0,
               positions: np.ndarray | None = None, ptype: str = "spherical",
               units: str = "degree, degree, metre", ir: np.ndarray | None = None,
               delay: np.ndarray | None = None) -> Path:
    """A minimal SOFA file: a toy spherical head where the near ear is louder and earlier."""
    if positions is None:
        az = np.arange(0.0, 360.0, 45.0)
        positions = np.stack([np.concatenate([az, az]),
                              np.concatenate([np.full(8, 20.0), np.full(8, -20.0)]),
                              np.full(16, 1.2)], axis=1)
    if ir is None:
        m, n = positions.shape[0], 96
        ir = np.zeros((m, 2, n))
        for i, (a, _e, _r) in enumerate(positions):
            lat = math.sin(math.radians(a))  # +1 = left
            itd = int(round(lat * 0.0006 * rate))  # left ear leads for lat > 0
            left_t, right_t = 20 + max(-itd, 0), 20 + max(itd, 0)
            ir[i, 0, left_t] = 1.0 + 0.5 * lat
            ir[i, 1, right_t] = 1.0 - 0.5 * lat
    with h5py.File(path, "w") as f:
        f.attrs["Conventions"] = np.bytes_(b"SOFA")
        f.attrs["SOFAConventions"] = np.bytes_(convention.encode())
        f.create_dataset("Data.IR", data=ir)
        f.create_dataset("Data.SamplingRate", data=np.array([rate]))
        ds = f.create_dataset("SourcePosition", data=positions)
        ds.attrs["Type"] = np.bytes_(ptype.encode())
        ds.attrs["Units"] = np.bytes_(units.encode())
        if delay is not None:
            f.create_dataset("Data.Delay", data=delay)
    return path


def test_kemar_loads_resampled_with_left_ear_first():
    h = load_hrtf("kemar", 16000)
    assert h.name == "kemar" and len(h.sha256) == 64 and h.sample_rate == 16000
    assert h.hrir.shape == (710, 2, h.taps) and h.taps == math.ceil(512 * 16000 / 44100)
    assert h.distance == pytest.approx(1.4)
    assert h.azimuth.min() > -180.0 and h.azimuth.max() <= 180.0
    left = h.hrir[h.nearest(90.0, 0.0)]
    right = h.hrir[h.nearest(-90.0, 0.0)]
    assert np.sum(left[0] ** 2) > 4 * np.sum(left[1] ** 2)
    assert np.sum(right[1] ** 2) > 4 * np.sum(right[0] ** 2)
    assert np.argmax(np.abs(left[0])) < np.argmax(np.abs(left[1]))
    # in-process cache: the same object back
    assert load_hrtf("kemar", 16000) is h
    assert load_hrtf("kemar", 22050).sample_rate == 22050


def test_nearest_and_interp_on_measured_directions():
    h = load_hrtf("kemar", 16000)
    i = h.nearest(92.0, 3.0)
    assert (h.azimuth[i], h.elevation[i]) == (90.0, 0.0)
    assert h.nearest(-175.0, 0.0) == h.nearest(185.0, 0.0)
    np.testing.assert_array_equal(h.hrir_at(90.0, 0.0, "interp"), h.hrir[i])
    mid = h.hrir_at(87.5, 0.0, "interp")
    e = [np.sum(h.hrir[h.nearest(a, 0.0)] ** 2) for a in (85.0, 90.0)]
    assert min(e) * 0.7 < np.sum(mid**2) < max(e) * 1.3
    with pytest.raises(TasBenchError, match="method"):
        h.hrir_at(0.0, 0.0, "cubic")
    with pytest.raises(TasBenchError, match="elevation"):
        h.nearest(0.0, 95.0)
    with pytest.raises(TasBenchError, match="azimuth"):
        h.nearest(float("nan"), 0.0)


@settings(max_examples=60, deadline=None)
@given(st.floats(-180.0, 180.0), st.floats(-90.0, 90.0))
def test_nearest_is_the_great_circle_minimum(az, el):
    h = load_hrtf("kemar", 16000)
    i = h.nearest(az, el)
    best = min(great_circle_deg(az, el, a, e) for a, e in zip(h.azimuth, h.elevation))
    assert great_circle_deg(az, el, h.azimuth[i], h.elevation[i]) == pytest.approx(best, abs=1e-6)


def test_synthetic_sofa_other_head_loads_through_same_path(tmp_path):
    p = write_sofa(tmp_path / "toy.sofa")
    h = load_hrtf(p, 16000)
    assert h.name == "toy" and h.hrir.shape[:2] == (16, 2) and h.sample_rate == 16000
    assert h.azimuth.max() <= 180.0 and sorted(set(h.azimuth.tolist()))[0] == -135.0
    left = h.hrir[h.nearest(90.0, 20.0)]
    assert np.sum(left[0] ** 2) > np.sum(left[1] ** 2)
    assert np.argmax(np.abs(left[0])) < np.argmax(np.abs(left[1]))


def test_cartesian_positions_and_delay_are_converted(tmp_path):
    sph = np.array([[90.0, 0.0, 1.0], [0.0, 45.0, 1.0], [-90.0, 0.0, 1.0]])
    cart = np.array([[0.0, 1.0, 0.0], [math.sqrt(0.5), 0.0, math.sqrt(0.5)], [0.0, -1.0, 0.0]])
    ir = np.zeros((3, 2, 32))
    ir[:, :, 0] = 1.0
    p = write_sofa(tmp_path / "cart.sofa", positions=cart, ptype="cartesian", units="metre",
                   rate=16000.0, ir=ir, delay=np.array([[0.0, 5.0]]))
    h = load_hrtf(p, 16000)
    np.testing.assert_allclose(h.azimuth, sph[:, 0], atol=1e-9)
    np.testing.assert_allclose(h.elevation, sph[:, 1], atol=1e-9)
    assert h.distance == pytest.approx(1.0)
    # Data.Delay (samples) is applied: right ear 5 samples later
    assert np.argmax(h.hrir[0, 0]) == 0 and np.argmax(h.hrir[0, 1]) == 5


def test_changed_file_is_reloaded(tmp_path):
    p = write_sofa(tmp_path / "toy.sofa")
    a = load_hrtf(p, 16000)
    ir = np.zeros((16, 2, 96))
    ir[:, :, 3] = 0.5
    write_sofa(p, ir=ir)
    b = load_hrtf(p, 16000)
    assert a.sha256 != b.sha256 and not np.allclose(a.hrir, b.hrir)


@pytest.mark.parametrize("conv", ["GeneralFIR", "SimpleFreeFieldSOS", "SingleRoomDRIR"])
def test_wrong_convention_is_refused(tmp_path, conv):
    p = write_sofa(tmp_path / "other.sofa", convention=conv)
    with pytest.raises(TasBenchError) as err:
        load_hrtf(p)
    assert str(p) in str(err.value) and "SOFAConventions" in str(err.value)


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(TasBenchError, match="not found") as err:
        load_hrtf(tmp_path / "missing.sofa")
    assert "missing.sofa" in str(err.value)
    with pytest.raises(TasBenchError, match="not found"):
        load_hrtf("no-such-head")
    junk = tmp_path / "junk.sofa"
    junk.write_bytes(b"this is not HDF5")
    with pytest.raises(TasBenchError, match="not a readable SOFA") as err:
        load_hrtf(junk)
    assert "junk.sofa" in str(err.value)
    p = write_sofa(tmp_path / "shape.sofa", ir=np.zeros((16, 3, 8)))
    with pytest.raises(TasBenchError, match="Data.IR"):
        load_hrtf(p)
    p = write_sofa(tmp_path / "nan.sofa", ir=np.full((16, 2, 8), np.nan))
    with pytest.raises(TasBenchError, match="NaN"):
        load_hrtf(p)
    p = write_sofa(tmp_path / "pos.sofa", positions=np.zeros((5, 3)), ir=np.ones((16, 2, 8)))
    with pytest.raises(TasBenchError, match="SourcePosition"):
        load_hrtf(p)
    with h5py.File(tmp_path / "noconv.sofa", "w") as f:
        f.create_dataset("Data.IR", data=np.zeros((1, 2, 4)))
    with pytest.raises(TasBenchError, match="SOFAConventions"):
        load_hrtf(tmp_path / "noconv.sofa")
    with pytest.raises(TasBenchError, match="sample_rate"):
        load_hrtf("kemar", 10)


def test_sphere_routes_to_the_analytic_head_and_a_sofa_named_sphere_stays_a_file(tmp_path):
    h = load_hrtf("sphere", 16000)
    assert h.name == h.path == "sphere:0.0875" and h.hrir.shape[1] == 2
    left = h.hrir[h.nearest(90.0, 0.0)]
    assert np.sum(left[0] ** 2) > 4 * np.sum(left[1] ** 2)  # left ear first, louder on the left
    assert load_hrtf("Sphere:0.09", 22050).name == "sphere:0.09"
    p = write_sofa(tmp_path / "sphere.sofa")
    assert load_hrtf(p, 16000).name == "sphere"  # a file: its stem, read from the file
    assert load_hrtf(p, 16000).path == str(p.resolve())
    with pytest.raises(TasBenchError, match="sample_rate"):
        load_hrtf("sphere", 10)
