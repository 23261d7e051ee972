"""Training and validation windows from a tas-bench dataset.

Each clip's binaural wav is held in memory at the model's rate (or, for splits too large for
memory, read window by window from disk); ``m = L + R`` and ``d = L - R``. A
training batch is a set of random 0.63 s windows whose choice depends only on (seed, step,
process index), so a resumed run sees exactly the batches an uninterrupted run would. Each
window's mix is RMS-normalised to ``target_rms`` (Mono2Binaural) and the same gain is applied
to ``d``; all-silent windows keep gain 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from tas_bench.data.manifest import Dataset, load_dataset
from tas_bench.data.prompts import swap_left_right
from tas_bench.runtime.audio_io import read_audio
from tas_bench.runtime.errors import TasBenchError

#: Above this many bytes of decoded train audio the clips are read window by window from disk.
PRELOAD_LIMIT_BYTES = 2 * 2**30


@dataclass
class ClipArrays:
    """One clip held in memory at the model rate: mix ``m``, difference ``d`` (float32, (T,))."""

    id: str
    mix: np.ndarray
    diff: np.ndarray
    prompt: str

    @property
    def length(self) -> int:
        return int(self.mix.shape[0])

    def window(self, start: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        return self.mix[start: start + width], self.diff[start: start + width]


@dataclass
class LazyClip:
    """A clip read from disk one window at a time (its file is already at the model rate)."""

    id: str
    path: Path
    length: int
    prompt: str

    def window(self, start: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            a, _ = sf.read(str(self.path), start=start, frames=width, dtype="float32",
                           always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise TasBenchError(f"unreadable or truncated audio file ({exc})", path=self.path) from None
        if not np.isfinite(a).all():
            raise TasBenchError("contains NaN or Inf samples", path=self.path)
        return a[:, 0] + a[:, 1], a[:, 0] - a[:, 1]


def load_split(data: Dataset | str | Path, split: str, sample_rate: int,
               preload: bool | None = None) -> list[ClipArrays | LazyClip]:
    """The clips of ``split`` as (m, d, prompt) sources at ``sample_rate`` Hz.

    ``preload=None`` holds the split in memory when it decodes to at most
    :data:`PRELOAD_LIMIT_BYTES`, else reads windows from disk on demand (clips stored at another
    rate are always decoded and resampled up front). Both give the same windows.
    """
    ds = data if isinstance(data, Dataset) else load_dataset(data)
    clips = ds.split(split)
    if preload is None:
        preload = sum(c.duration for c in clips) * sample_rate * 8 <= PRELOAD_LIMIT_BYTES
    out: list[ClipArrays | LazyClip] = []
    for clip in clips:
        path = ds.audio_path(clip)
        if not preload:
            try:
                info = sf.info(str(path))
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise TasBenchError(f"unreadable audio file ({exc})", path=path) from None
            if info.channels != 2:
                raise TasBenchError(f"expected 2 channels, found {info.channels}", path=path)
            if info.samplerate == sample_rate and info.frames > 0:
                out.append(LazyClip(clip.id, path, int(info.frames), clip.prompt))
                continue
        a = read_audio(path, channels=2, sample_rate=sample_rate).samples
        out.append(ClipArrays(clip.id, (a[0] + a[1]).astype(np.float32),
                              (a[0] - a[1]).astype(np.float32), clip.prompt))
    return out


def normalise(mix: np.ndarray, diff: np.ndarray, target_rms: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Scale a window so that rms(mix) = ``target_rms``; returns (mix, diff, gain)."""
    rms = float(np.sqrt(np.mean(np.square(mix, dtype=np.float64))))
    gain = target_rms / rms if rms > 1e-8 else 1.0
    return (mix * gain).astype(np.float32), (diff * gain).astype(np.float32), gain


def _window(c: ClipArrays | LazyClip, start: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    m, d = c.window(start, width)
    if m.shape[0] < width:  # clips shorter than a window are zero-padded
        m = np.pad(m, (0, width - m.shape[0]))
        d = np.pad(d, (0, width - d.shape[0]))
    return m, d


class WindowSampler:
    """Deterministic random windows: ``batch(step)`` -> (mix (B,W), diff (B,W), prompts).

    ``mirror``: each window is replaced with p = 0.5 by its mirror image, the scene with left
    and right exchanged: ``d -> -d`` (the mix is unchanged) and "left" <-> "right" in the prompt
    (:func:`tas_bench.data.prompts.swap_left_right`). The coins come from their own random
    stream, so the windows drawn are the same with and without it. It makes the training data
    left/right symmetric: the demo rooms put the listener nearer their right wall in every clip,
    so without it ``d`` and ``-d`` differ in their early reflections whatever the prompt says.
    """

    def __init__(self, clips: list[ClipArrays | LazyClip], width: int, batch_size: int, seed: int,
                 target_rms: float, rank: int = 0, mirror: bool = False) -> None:
        if not clips:
            raise TasBenchError("no training clips (the dataset has no 'train' split)", field="split")
        self.clips, self.width, self.batch_size = clips, width, batch_size
        self.seed, self.target_rms, self.rank = seed, target_rms, rank
        self.mirror = bool(mirror)

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        rng = np.random.default_rng([self.seed, step, self.rank])
        coins = np.random.default_rng([self.seed, step, self.rank, 1]).integers(
            2, size=self.batch_size) if self.mirror else np.zeros(self.batch_size, dtype=int)
        mixes, diffs, prompts = [], [], []
        for i in range(self.batch_size):
            c = self.clips[int(rng.integers(len(self.clips)))]
            start = int(rng.integers(max(1, c.length - self.width + 1)))
            m, d = _window(c, start, self.width)
            m, d, _ = normalise(m, d, self.target_rms)
            mixes.append(m)
            diffs.append(-d if coins[i] else d)
            prompts.append(swap_left_right(c.prompt) if coins[i] else c.prompt)
        return np.stack(mixes), np.stack(diffs), prompts


def fixed_windows(clips: list[ClipArrays | LazyClip], width: int, n: int, target_rms: float
                  ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Up to ``n`` validation windows: the centre window of each clip, cycling through clips."""
    mixes, diffs, prompts = [], [], []
    for i in range(min(n, len(clips))):
        c = clips[i]
        start = max(0, (c.length - width) // 2)
        m, d = _window(c, start, width)
        m, d, _ = normalise(m, d, target_rms)
        mixes.append(m)
        diffs.append(d)
        prompts.append(c.prompt)
    return np.stack(mixes), np.stack(diffs), prompts
