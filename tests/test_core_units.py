"""Audio I/O, geometry, registry, stats and cache units."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.base import ClipOutput
from tas_bench.data.geometry import boundary_margin, direction_words, great_circle_deg, wrap_azimuth
from tas_bench.runtime.audio_io import read_audio, resample, write_wav
from tas_bench.runtime.cache import OutputCache
from tas_bench.runtime.errors import AudioError, TasBenchError
from tas_bench.runtime.registry import Registry
from tas_bench.runtime.stats import summarize


def test_read_audio_rejects_bad_files(tmp_path: Path) -> None:
    write_wav(tmp_path / "ok.wav", np.full((2, 100), 0.1), 8000)
    a = read_audio(tmp_path / "ok.wav", channels=2, sample_rate=16000)
    assert a.samples.shape == (2, 200) and a.source_rate == 8000
    with pytest.raises(AudioError, match="expected 1 channel"):
        read_audio(tmp_path / "ok.wav", channels=1)
    (tmp_path / "trunc.wav").write_bytes((tmp_path / "ok.wav").read_bytes()[:20])
    with pytest.raises(AudioError, match="unreadable or truncated"):
        read_audio(tmp_path / "trunc.wav")
    (tmp_path / "text.wav").write_text("hello")
    with pytest.raises(AudioError, match="unreadable"):
        read_audio(tmp_path / "text.wav")
    write_wav(tmp_path / "nan.wav", np.zeros((2, 10)), 8000, subtype="FLOAT")
    import soundfile as sf
    sf.write(tmp_path / "nan.wav", np.array([[np.nan, 0.0]] * 4), 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN or Inf"):
        read_audio(tmp_path / "nan.wav")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 2)), 8000)
    with pytest.raises(AudioError, match="empty"):
        read_audio(tmp_path / "empty.wav")
    with pytest.raises(AudioError, match="not found"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="exceed"):
        write_wav(tmp_path / "loud.wav", np.full((2, 4), 1.5), 8000)
    assert not (tmp_path / "loud.wav").exists()


def test_resample_preserves_a_tone() -> None:
    t = np.arange(48000) / 48000
    x = np.sin(2 * np.pi * 440 * t)[None]
    y = resample(x, 48000, 16000)
    assert y.shape == (1, 16000)
    ref = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.max(np.abs(y[0, 100:-100] - ref[100:-100])) < 1e-3


@pytest.mark.parametrize(("az", "el", "words"), [
    (45, 30, ("left", "front", "above")), (-45, -30, ("right", "front", "below")),
    (135, 10, ("left", "behind", "above")), (-135, -10, ("right", "behind", "below")),
    (315, 20, ("right", "front", "above")), (225, 20, ("right", "behind", "above")),
])
def test_direction_words_sofa_convention(az: float, el: float, words: tuple) -> None:
    assert direction_words(az, el) == words


@given(st.floats(-720, 720), st.floats(-89, 89))
def test_wrap_and_margin(az: float, el: float) -> None:
    w = wrap_azimuth(az)
    assert -180 < w <= 180
    assert math.isclose(math.cos(math.radians(w)), math.cos(math.radians(az)), abs_tol=1e-9)
    assert 0 <= boundary_margin(az, el) <= 45
    assert great_circle_deg(az, el, az, el) < 1e-4


def test_registry_lazy_decorator_and_unknown() -> None:
    reg: Registry = Registry("thing", "tas_bench.no_such_group")
    reg.register("lazy", "tas_bench.data.geometry:wrap_azimuth")

    @reg.register("direct")
    def direct() -> int:
        return 1

    assert reg.names() == ["direct", "lazy"]
    assert reg.get("lazy") is wrap_azimuth and reg.get("direct") is direct
    with pytest.raises(TasBenchError, match="unknown thing 'nope'; known: direct, lazy"):
        reg.get("nope")
    with pytest.raises(TasBenchError, match="already registered"):
        reg.register("direct", lambda: 2)


def test_summarize_hand_case() -> None:
    s = summarize(np.array([1.0, 2.0, 3.0, np.nan]))
    assert s["n"] == 3 and s["mean"] == 2.0 and s["std"] == 1.0
    lo, hi = s["ci95"]
    assert 1.0 <= lo <= 2.0 <= hi <= 3.0
    assert summarize(np.array([np.nan]))["mean"] is None
    assert summarize(np.array([5.0])) == {"mean": 5.0, "std": None, "ci95": None, "n": 1}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=50))
def test_summarize_ci_brackets_data(values: list[float]) -> None:
    s = summarize(np.array(values))
    assert min(values) - 1e-9 <= s["ci95"][0] <= s["ci95"][1] <= max(values) + 1e-9
    assert s == summarize(np.array(values))  # seeded: deterministic


def test_cache_round_trip_and_corruption(tmp_path: Path) -> None:
    cache = OutputCache(tmp_path)
    key = cache.key({"a": 1})
    assert cache.get(key) is None
    cache.put(key, ClipOutput({"x": 1.5, "y": float("nan")}, {"emb": np.arange(6.0).reshape(2, 3)}))
    out = cache.get(key)
    assert out is not None and out.values["x"] == 1.5 and math.isnan(out.values["y"])
    np.testing.assert_array_equal(out.arrays["emb"], np.arange(6.0).reshape(2, 3))
    path = next(tmp_path.rglob("*.npz"))
    path.write_bytes(path.read_bytes()[:50])
    assert cache.get(key) is None  # truncated entry = miss, never a crash
    assert cache.key({"a": 1}) != cache.key({"a": 2})
    assert list(tmp_path.rglob(".*")) == []  # no temp files left behind


def test_registry_reads_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    """Third-party plugins arrive through an entry-point group, lazily, without replacing a
    built-in of the same name."""
    from importlib.metadata import EntryPoint

    import tas_bench.runtime.registry as registry_mod

    eps = [EntryPoint("third-party", "tas_bench.data.geometry:great_circle_deg", "tas_bench.test_group"),
           EntryPoint("builtin", "tas_bench.data.geometry:boundary_margin", "tas_bench.test_group")]
    seen: list[str] = []

    def fake_entry_points(*, group: str) -> list[EntryPoint]:
        seen.append(group)
        return eps if group == "tas_bench.test_group" else []

    monkeypatch.setattr(registry_mod, "entry_points", fake_entry_points)
    reg: Registry = Registry("plugin", "tas_bench.test_group")
    reg.register("builtin", "tas_bench.data.geometry:wrap_azimuth")
    assert reg.names() == ["builtin", "third-party"] and seen == ["tas_bench.test_group"]
    assert reg.get("third-party") is great_circle_deg
    assert reg.get("builtin") is wrap_azimuth
