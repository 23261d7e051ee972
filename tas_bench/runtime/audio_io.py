"""Audio reading, validation, resampling and writing.

Arrays are float32 or float64 of shape ``(channels, samples)``; sample rates in Hz.
Binaural arrays are ``(2, T)`` with channel 0 = left ear, channel 1 = right ear.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from tas_bench.runtime.errors import AudioError, TasBenchError
from tas_bench.runtime.fileio import sha256_bytes, write_bytes_atomic

#: How resampling is done; recorded in results files so a change is visible.
RESAMPLER = "scipy.signal.resample_poly(window=('kaiser', 5.0))"

#: Sample rates (Hz) tas-bench accepts anywhere: in audio files, options and systems. A file
#: outside the range is refused before anything is resampled (a 1 Hz header would otherwise ask
#: for a 16000-fold longer array).
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 384000

#: Chunks of a WAV header walked when checking the declared data size (a hostile file with
#: millions of tiny chunks must not make the check slow).
_MAX_WAV_CHUNKS = 1024


def check_sample_rate(rate: object, *, path: str | os.PathLike[str] | None = None,
                      field: str | None = None) -> int:
    """``rate`` as an int if it is an integer in [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] Hz, else
    :class:`AudioError` naming ``path``/``field``."""
    ok = isinstance(rate, (int, np.integer)) and not isinstance(rate, bool)
    if not ok or not MIN_SAMPLE_RATE <= int(rate) <= MAX_SAMPLE_RATE:  # type: ignore[call-overload]
        raise AudioError(f"sample rate {rate!r} Hz out of range [{MIN_SAMPLE_RATE}, "
                         f"{MAX_SAMPLE_RATE}] Hz", path=path, field=field)
    return int(rate)  # type: ignore[call-overload]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def require_regular_file(path: str | os.PathLike[str], what: str = "file",
                         error: type[TasBenchError] = AudioError) -> Path:
    """``path`` if it names a regular file (symlinks followed), else ``error`` naming it.

    Only ``stat`` is used, so a FIFO or a device is refused without ever being opened (opening
    a FIFO for reading blocks until a writer appears). ``what`` words the message
    ("reference audio", "records file", ...).
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):
        raise error(f"{what} not found", path=p) from None
    except OSError as exc:
        raise error(f"{what} cannot be accessed ({exc.strerror})", path=p) from None
    if not stat.S_ISREG(st.st_mode):
        kind = _kind(st.st_mode)
        raise error(f"{what} is {kind}, not a regular file" if kind.startswith("a ")
                    else f"{what} is not a regular file", path=p)
    return p


@contextlib.contextmanager
def _open_regular(path: Path) -> Iterator[tuple[int, int]]:
    """Open a regular file for reading; yields (file descriptor, size in bytes).

    O_NONBLOCK makes opening a FIFO swapped in after the ``stat`` check return at once instead
    of hanging; the ``fstat`` of the opened descriptor then refuses it. libsndfile reads the
    descriptor itself (``sf_open_fd``): no Python I/O callbacks, whose errors on a hostile file
    would be printed to stderr as "Exception ignored" tracebacks.
    """
    require_regular_file(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise AudioError(f"cannot be opened ({exc.strerror})", path=path) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise AudioError(f"is {_kind(st.st_mode)}, not a regular file", path=path)
    try:
        yield fd, st.st_size
    finally:
        os.close(fd)


def wav_truncation(fd: int, size: int) -> str | None:
    """Why a RIFF/RIFX/RF64 WAV file is cut short, or None (not a WAV, or complete).

    libsndfile reports the frames actually present, so a file cut in the middle of its audio
    would be read as a shorter clip; here the ``data`` chunk size declared in the header (bytes)
    is compared with the bytes after the chunk header. A size of 0xFFFFFFFF in a RIFF file (what
    streaming writers leave) is not checked.
    """
    head = os.pread(fd, 12, 0)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
        return None
    endian = ">" if head[:4] == b"RIFX" else "<"
    pos, ds64_data = 12, None
    for _ in range(_MAX_WAV_CHUNKS):
        if pos + 8 > size:
            return None
        chunk = os.pread(fd, 8, pos)
        if len(chunk) < 8:
            return None
        cid, (csize,) = chunk[:4], struct.unpack(endian + "I", chunk[4:8])
        if cid == b"ds64":
            body = os.pread(fd, 16, pos + 8)
            if len(body) == 16:
                ds64_data = struct.unpack("<Q", body[8:16])[0]
        elif cid == b"data":
            declared = csize
            if csize == 0xFFFFFFFF:
                if head[:4] != b"RF64" or ds64_data is None:
                    return None
                declared = ds64_data
            present = size - (pos + 8)
            if declared > present:
                return (f"truncated: the header declares {declared} bytes of audio data, the "
                        f"file holds {present}")
            return None
        pos += 8 + csize + (csize & 1)
    return None


@dataclass(frozen=True)
class Audio:
    """Samples ``(channels, T)`` at ``sample_rate`` Hz, with the rate of the file it came from."""

    samples: np.ndarray
    sample_rate: int
    source_rate: int
    path: str | None = None
    #: libsndfile's container name of the file read (``WAV``, ``FLAC``, ...), None if unknown
    format: str | None = None

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


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header says: channels, sample rate (Hz), frames present."""

    channels: int
    sample_rate: int
    frames: int


_SF_ERRORS = (sf.SoundFileError, RuntimeError, ValueError, TypeError, OverflowError,
              struct.error, EOFError)


def probe_audio(path: str | os.PathLike[str]) -> AudioInfo:
    """Channels, sample rate and frame count of an audio file without reading its samples.

    Raises :class:`AudioError` as :func:`read_audio` does for a missing, non-regular,
    unreadable, truncated or out-of-range-rate file.
    """
    p = Path(path)
    with _open_regular(p) as (fd, size):
        why = wav_truncation(fd, size)
        if why:
            raise AudioError(why, path=p)
        try:
            with sf.SoundFile(fd, closefd=False) as snd:
                info = AudioInfo(int(snd.channels), int(snd.samplerate), int(snd.frames))
        except _SF_ERRORS as exc:
            raise AudioError(f"unreadable or truncated audio file ({exc})", path=p) from None
    check_sample_rate(info.sample_rate, path=p)
    return info


def read_audio(
    path: str | os.PathLike[str],
    *,
    channels: int | None = None,
    sample_rate: int | None = None,
    dtype: str = "float32",
    allow_silent: bool = True,
) -> Audio:
    """Read an audio file (WAV, FLAC or any format libsndfile reads, detected from its
    content), validate it and optionally resample it to ``sample_rate`` Hz.

    Raises :class:`AudioError` naming the file when it is missing or not a regular file (a FIFO
    is never opened), unreadable, truncated (a WAV whose data chunk is shorter than its header
    declares; a FLAC file cut short, which fails to decode or yields fewer frames than its
    header says), has a sample rate outside [MIN_SAMPLE_RATE, MAX_SAMPLE_RATE] Hz (checked
    before any sample is read or resampled), is empty, has a channel count other than ``channels``,
    holds NaN/Inf samples, or (with ``allow_silent=False``) is entirely silent.
    """
    p = Path(path)
    if sample_rate is not None:
        check_sample_rate(sample_rate, field="sample_rate")
    with _open_regular(p) as (fd, size):
        why = wav_truncation(fd, size)
        if why:
            raise AudioError(why, path=p)
        try:
            with sf.SoundFile(fd, closefd=False) as snd:
                sr = check_sample_rate(int(snd.samplerate), path=p)
                if channels is not None and snd.channels != channels:
                    raise AudioError(f"expected {channels} channel(s), found {snd.channels}",
                                     path=p)
                declared = int(snd.frames)
                container = str(snd.format)
                data = snd.read(dtype=dtype, always_2d=True)
        except _SF_ERRORS as exc:
            raise AudioError(f"unreadable or truncated audio file ({exc})", path=p) from None
    if 0 < data.shape[0] < declared:  # a compressed file (FLAC) whose header says more
        raise AudioError(f"truncated: the header declares {declared} frames, {data.shape[0]} "
                         "could be decoded", path=p)
    x = np.ascontiguousarray(data.T)
    if x.shape[1] == 0:
        raise AudioError("empty audio file (0 samples)", path=p)
    if not np.isfinite(x).all():
        raise AudioError("contains NaN or Inf samples", path=p)
    if not allow_silent and not np.any(x):
        raise AudioError("all samples are zero (silent)", path=p)
    out_sr = sr
    if sample_rate is not None and sample_rate != sr:
        x = resample(x, sr, int(sample_rate))
        out_sr = int(sample_rate)
    return Audio(samples=x, sample_rate=out_sr, source_rate=sr, path=str(p), format=container)


#: Audio file formats tas-bench writes: name -> (libsndfile format, file suffix).
AUDIO_FORMATS = {"wav": ("WAV", ".wav"), "flac": ("FLAC", ".flac")}


def audio_suffix(audio_format: str) -> str:
    """The file suffix (``.wav``, ``.flac``) of an :data:`AUDIO_FORMATS` name."""
    try:
        return AUDIO_FORMATS[audio_format][1]
    except KeyError:
        raise TasBenchError(f"{audio_format!r} is not one of {sorted(AUDIO_FORMATS)}",
                            field="--audio-format") from None


#: libsndfile container names a file of each suffix may hold.
_CONTAINERS = {".wav": ("WAV", "WAVEX", "RF64"), ".flac": ("FLAC",)}


def container_problem(name: str, container: str | None, declared: object = None) -> str | None:
    """Why an audio file ``name`` (a dataset's relative path) does not hold what it should, or
    None: its suffix (``.wav``/``.flac``) names another container than the one read
    (``container``, libsndfile's name), or ``declared`` (a dataset's ``config.audio_format``,
    ``wav``/``flac``; other values are not checked) names another suffix."""
    suffix = Path(name).suffix.lower()
    if container is not None and suffix in _CONTAINERS and container not in _CONTAINERS[suffix]:
        return f"{name}: holds {container} audio, its name says {suffix[1:].upper()}"
    if isinstance(declared, str) and declared in AUDIO_FORMATS \
            and suffix != AUDIO_FORMATS[declared][1]:
        return (f"{name}: dataset.json says audio_format {declared!r}, the file is "
                f"{suffix or 'without a suffix'}")
    return None


def write_wav(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
) -> str:
    """Write ``samples`` (channels, T) as a WAV file atomically; returns its bytes' sha256.

    ``PCM_16`` values outside [-1, 1] would wrap, so they are refused rather than clipped
    silently; use ``subtype="FLOAT"`` for unbounded signals.
    """
    return write_audio(path, samples, sample_rate, subtype=subtype, audio_format="wav")


def _pcm16_as_wav_would(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """The int16 samples (T, channels) that a ``PCM_16`` WAV of ``x`` (T, channels) holds.

    libsndfile rounds float input to 16 bits differently for WAV and for FLAC; quantising
    through the WAV encoder first makes a FLAC file decode to exactly the samples of the WAV
    file the same array gives (bit-identical, tested), so the two formats hold one dataset.
    """
    buf = io.BytesIO()
    sf.write(buf, x, int(sample_rate), subtype="PCM_16", format="WAV")
    buf.seek(0)
    q, _ = sf.read(buf, dtype="int16", always_2d=True)
    return q


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    *,
    subtype: str = "PCM_16",
    audio_format: str = "wav",
) -> str:
    """Write ``samples`` (channels, T) atomically as ``audio_format`` (:data:`AUDIO_FORMATS`);
    returns the hex sha256 of the bytes written.

    ``wav``: as :func:`write_wav`. ``flac``: lossless FLAC of the same 16-bit (``PCM_16``) or
    24-bit (``PCM_24``) samples; a ``PCM_16`` FLAC decodes to exactly the int16 samples the
    ``PCM_16`` WAV of the same array holds. Values outside [-1, 1] are refused for PCM subtypes
    (they would wrap), NaN/Inf always. Equal samples give equal bytes.
    """
    fmt = AUDIO_FORMATS.get(audio_format, (None,))[0]
    if fmt is None:
        raise AudioError(f"audio format {audio_format!r} is not one of {sorted(AUDIO_FORMATS)}",
                         path=path)
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[None, :]
    if not np.isfinite(x).all():
        raise AudioError("refusing to write NaN/Inf samples", path=path)
    if subtype.startswith("PCM") and np.abs(x).max(initial=0.0) > 1.0:
        raise AudioError("samples exceed [-1, 1]; scale them or write FLOAT", path=path)
    buf = io.BytesIO()
    if fmt == "FLAC":
        if subtype not in ("PCM_16", "PCM_24"):
            raise AudioError(f"FLAC holds PCM_16 or PCM_24 samples, not {subtype}", path=path)
        data = _pcm16_as_wav_would(x.T, sample_rate) if subtype == "PCM_16" else x.T
        sf.write(buf, data, int(sample_rate), subtype=subtype, format="FLAC")
        out = buf.getvalue()
    else:
        sf.write(buf, x.T, int(sample_rate), subtype=subtype, format="WAV")
        out = _zero_peak_timestamp(bytearray(buf.getvalue()))
    write_bytes_atomic(path, out)
    return sha256_bytes(out)


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


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _same(a: Path, b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output_file(path: str | os.PathLike[str], *, what: str = "--out",
                      inputs: tuple[str | os.PathLike[str], ...] = ()) -> Path:
    """Refuse, before any work, an output file path that cannot or must not be written.

    Refused: an existing folder or non-regular file at ``path``, a parent that is a file, and
    a path that is one of ``inputs`` (same file through a symlink or hard link included, so an
    input is never overwritten). An existing regular file is fine (it is replaced atomically).
    """
    p = Path(path)
    if p.exists():
        if p.is_dir():
            raise TasBenchError(f"{what} is a folder; give the path of the output file", path=p)
        if not p.is_file():
            raise TasBenchError(f"{what} exists and is not a regular file", path=p)
        for inp in inputs:
            if _same(p, inp):
                raise TasBenchError(f"{what} is the input file {inp}; refusing to overwrite it",
                                    path=p)
    else:
        anc = _nearest_existing(p.parent)
        if anc.exists() and not anc.is_dir():
            raise TasBenchError(f"{what}: {anc} is not a folder", path=p)
    return p


def check_output_folder(path: str | os.PathLike[str], *, what: str = "--out",
                        inputs: tuple[str | os.PathLike[str], ...] = (),
                        file_names: tuple[str, ...] = ()) -> Path:
    """Refuse, before any work, an output folder that cannot or must not be written.

    Refused: ``path`` naming an existing file, a parent that is a file, a folder that is one of
    the ``inputs`` folders (same folder through a symlink included), a folder that is not
    writable, and any of ``file_names`` inside it that exists as a folder or a non-regular file
    (the final rename onto it would fail after all the work).
    """
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            raise TasBenchError(f"{what} exists and is not a folder", path=p)
        for inp in inputs:
            if _same(p, inp):
                raise TasBenchError(f"{what} is the input folder {inp}; choose another folder",
                                    path=p)
        if not os.access(p, os.W_OK | os.X_OK):
            raise TasBenchError(f"{what} folder is not writable", path=p)
        for name in file_names:
            q = p / name
            if q.exists() and not q.is_file():
                raise TasBenchError(f"{what}: {name} exists and is not a regular file", path=q)
    else:
        anc = _nearest_existing(p.parent)
        if anc.exists() and not anc.is_dir():
            raise TasBenchError(f"{what}: {anc} is not a folder", path=p)
    return p
