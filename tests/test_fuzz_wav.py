"""Fuzzing the audio readers (issue 8): random bytes and mutated valid WAV files (cut, header
bytes flipped, rate/channels/bits/block-align/size fields rewritten) given to
:func:`tas_bench.runtime.audio_io.read_audio` / :func:`probe_audio` and to the scoring runner's
prediction loader either read as audio or raise a :class:`TasBenchError` - never another
exception, never a hang. Inputs are at most a few kB and rates are range-checked before
resampling, so each example is bounded in time and memory (hypothesis deadline off, since a
loaded 2-core machine makes wall-clock deadlines flaky)."""

from __future__ import annotations

import io
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tas_bench.pipeline.scoring import _Item, _Scorer
from tas_bench.runtime.audio_io import Audio, probe_audio, read_audio
from tas_bench.runtime.errors import TasBenchError

# an exception inside a libsndfile I/O callback is only printed ("Exception ignored ...", a
# traceback on the user's terminal): make it fail the test
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])


def _valid_wavs() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for subtype, fmt, channels, n in (("PCM_16", "WAV", 2, 300), ("FLOAT", "WAV", 2, 200),
                                      ("PCM_24", "WAV", 1, 150), ("PCM_U8", "WAV", 2, 100),
                                      ("PCM_16", "RF64", 2, 120), ("DOUBLE", "WAVEX", 2, 80)):
        buf = io.BytesIO()
        sf.write(buf, rng.uniform(-0.5, 0.5, (n, channels)), 16000, subtype=subtype, format=fmt)
        out.append(buf.getvalue())
    return out


VALID = _valid_wavs()
#: Offsets of the header fields worth rewriting in a canonical 44-byte-header WAV.
FIELDS = {"riff_size": (4, "<I"), "fmt_size": (16, "<I"), "format_tag": (20, "<H"),
          "channels": (22, "<H"), "rate": (24, "<I"), "byte_rate": (28, "<I"),
          "block_align": (32, "<H"), "bits": (34, "<H"), "data_size": (40, "<I")}
INTERESTING = [0, 1, 2, 3, 7, 8, 255, 999, 1000, 16000, 65535, 384000, 384001, 2**31 - 1,
               2**32 - 1]


@st.composite
def mutated_wav(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cut", "flip", "field", "splice"]))
        if op == "cut" and len(raw) > 1:
            raw = raw[: draw(st.integers(0, len(raw) - 1))]
        elif op == "flip" and raw:
            i = draw(st.integers(0, min(len(raw), 96) - 1))  # mostly header bytes
            raw[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "field" and len(raw) >= 44:
            off, f = FIELDS[draw(st.sampled_from(sorted(FIELDS)))]
            limit = 2**32 - 1 if f == "<I" else 2**16 - 1
            v = draw(st.sampled_from(INTERESTING) | st.integers(0, limit))
            raw[off:off + struct.calcsize(f)] = struct.pack(f, min(v, limit))
        elif op == "splice":
            i = draw(st.integers(0, len(raw)))
            raw[i:i] = draw(st.binary(max_size=64))
    return bytes(raw)


def _check(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.wav"
        p.write_bytes(data)
        for kwargs in ({}, {"channels": 2, "sample_rate": 16000, "dtype": "float64"}):
            try:
                a = read_audio(p, **kwargs)
            except TasBenchError:
                continue
            assert isinstance(a, Audio) and a.samples.ndim == 2 and np.isfinite(a.samples).all()
        try:
            info = probe_audio(p)
        except TasBenchError:
            pass
        else:
            assert info.channels >= 1 and info.frames >= 0
        # what `score` does with a prediction: a bad file becomes an invalid entry
        bad: list[dict[str, str]] = []
        item = _Item(clip=None, ref_path=REF, pred_path=p, ref_sha="", pred_sha="")  # type: ignore[arg-type]
        item.clip = _FakeClip()  # type: ignore[assignment]
        pair = _Scorer._load(item, 16000, bad, [])
        assert (pair is None) == bool(bad)
        if pair is not None:
            assert pair[0].shape == pair[1].shape


class _FakeClip:
    id = "x"


_REF_DIR = tempfile.mkdtemp(prefix="tas-fuzz-ref-")
REF = Path(_REF_DIR) / "ref.wav"
sf.write(REF, np.random.default_rng(1).uniform(-0.5, 0.5, (400, 2)), 16000, subtype="FLOAT")


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_only_give_tasbench_errors(data: bytes) -> None:
    _check(data)


@FUZZ
@given(st.sampled_from([b"RIFF", b"RIFX", b"RF64"]), st.binary(max_size=2048))
def test_random_bytes_behind_a_riff_header_only_give_tasbench_errors(magic: bytes, data: bytes) -> None:
    _check(magic + struct.pack("<I", len(data) + 4) + b"WAVE" + data)


@FUZZ
@given(mutated_wav())
def test_mutated_wavs_only_give_tasbench_errors(data: bytes) -> None:
    _check(data)


def test_the_unmutated_files_read() -> None:
    for raw in VALID:
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "x.wav").write_bytes(raw)
            assert read_audio(Path(d) / "x.wav").samples.shape[1] > 0


def _data_span(raw: bytes) -> tuple[int, int]:
    """(first byte, end) of the audio data of a valid file made by :func:`_valid_wavs`."""
    start = raw.index(b"data") + 8
    declared = struct.unpack("<I", raw[start - 4:start])[0]
    if declared == 0xFFFFFFFF:  # RF64: the size is in the ds64 chunk
        ds64 = raw.index(b"ds64") + 8
        declared = struct.unpack("<Q", raw[ds64 + 8:ds64 + 16])[0]
    return start, start + declared


@FUZZ
@given(st.sampled_from(range(len(VALID))), st.data())
def test_a_cut_anywhere_in_the_audio_data_is_refused(which: int, data: st.DataObject) -> None:
    raw = VALID[which]
    start, end = _data_span(raw)
    cut = data.draw(st.integers(start, end - 1))
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "x.wav").write_bytes(raw[:cut])
        with pytest.raises(TasBenchError, match="truncated"):
            read_audio(Path(d) / "x.wav", channels=None)


@FUZZ
@given(st.sampled_from(range(len(VALID))),
       st.integers(0, 999) | st.integers(384001, 2**32 - 1))
def test_a_rate_out_of_range_is_refused(which: int, rate: int) -> None:
    raw = bytearray(VALID[which])
    fmt = raw.index(b"fmt ") + 8
    raw[fmt + 4:fmt + 8] = struct.pack("<I", rate)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "x.wav").write_bytes(bytes(raw))
        with pytest.raises(TasBenchError, match="out of range|unreadable"):
            read_audio(Path(d) / "x.wav", sample_rate=16000)
