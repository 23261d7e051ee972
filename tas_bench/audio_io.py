"""Audio reading, validation, resampling and writing.

Arrays are float32 or float64 of shape ``(channels, samples)``; sample rates in Hz.
Binaural arrays are ``(2, T)`` with channel 0 = left ear, channel 1 = right ear.
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from tas_bench.errors import AudioError
from tas_bench.fileio import write_bytes_atomic

#: How resampling is done; recorded in results files so a change is visible.
RESAMPLER = "scipy.signal.resample_poly(window=('kaiser', 5.0))"


@dataclass(frozen=True)
class Audio:
    """Samples ``(channels, T)`` at ``sample_rate`` Hz, with the rate of the file it came from."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    path: str | None = None

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.shape[1] / float(self.sample_rate)


def resample(x: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Resample ``x`` (..., T) from ``sr_from`` to ``sr_to`` Hz with a polyphase filter."""
    if sr_from == sr_to:
        return x
    ratio = Fraction(int(sr_to), int(sr_from))
    y = resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    return y.astype(x.dtype, copy=False)


def read_audio(
    path: str | os.PathLike[str],
    *,
    channels: int | None = None,
    sample_rate: int | None = None,
    dtype: str = "float32",
    allow_silent: bool = True,
) -> Audio:
    """Read an audio file, validate it and optionally resample it.

    Raises :class:`AudioError` naming the file when it is missing, unreadable or truncated,
    empty, has a channel count other than ``channels``, holds NaN/Inf samples, or (with
    ``allow_silent=False``) is entirely silent.
    """
    p = Path(path)
    if not p.exists():
        raise AudioError("file not found", path=p)
    if not p.is_file():
        raise AudioError("not a regular file", path=p)
    try:
        data, sr = sf.read(str(p), dtype=dtype, always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioError(f"unreadable or truncated audio file ({exc})", path=p) from None
    x = np.ascontiguousarray(data.T)
    if x.shape[1] == 0:
        raise AudioError("empty audio file (0 samples)", path=p)
    if channels is not None and x.shape[0] != channels:
        raise AudioError(f"expected {channels} channel(s), found {x.shape[0]}", path=p)
    if not np.isfinite(x).all():
        raise AudioError("contains NaN or Inf samples", path=p)
    if not allow_silent and not np.any(x):
        raise AudioError("all samples are zero (silent)", path=p)
    out_sr = int(sr)
    if sample_rate is not None and sample_rate != sr:
        x = resample(x, int(sr), int(sample_rate))
        out_sr = int(sample_rate)
    return Audio(samples=x, sample_rate=out_sr, source_rate=int(sr), path=str(p))


def write_wav(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
) -> None:
    """Write ``samples`` (channels, T) as a WAV file atomically.

    ``PCM_16`` values outside [-1, 1] would wrap, so they are refused rather than clipped
    silently; use ``subtype="FLOAT"`` for unbounded signals.
    """
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[None, :]
    if not np.isfinite(x).all():
        raise AudioError("refusing to write NaN/Inf samples", path=path)
    if subtype.startswith("PCM") and np.abs(x).max(initial=0.0) > 1.0:
        raise AudioError("samples exceed [-1, 1]; scale them or write FLOAT", path=path)
    buf = io.BytesIO()
    sf.write(buf, x.T, int(sample_rate), subtype=subtype, format="WAV")
    write_bytes_atomic(path, _zero_peak_timestamp(bytearray(buf.getvalue())))


def _zero_peak_timestamp(data: bytearray) -> bytes:
    """libsndfile writes the wall-clock time into the PEAK chunk of float WAVs; zero it so equal
    samples always give equal bytes (dataset and prediction fingerprints must be stable)."""
    pos = 12  # after "RIFF", size, "WAVE"
    while pos + 8 <= len(data):
        cid = bytes(data[pos:pos + 4])
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        if cid == b"PEAK" and size >= 8:
            data[pos + 12:pos + 16] = b"\0\0\0\0"  # after the 4-byte version: the timestamp
            break
        pos += 8 + size + (size & 1)
    return bytes(data)


def peak_normalize(x: np.ndarray, eps: float = 1e-20) -> np.ndarray:
    """Divide ``x`` by max(eps, max |x|) over all channels jointly (Mono2Binaural convention)."""
    return x / max(eps, float(np.abs(x).max(initial=0.0)))
