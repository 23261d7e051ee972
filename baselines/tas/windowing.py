"""Any input length on a model with a fixed window: overlapping windows and cross-fades.

A clip of ``n`` samples is covered by windows of ``width`` samples starting every
``width - overlap`` samples, the last one aligned to the clip's end; a clip shorter than one
window is zero-padded to ``width`` and the result trimmed back. Each window's predicted
difference is weighted by a raised-cosine fade over ``overlap`` samples at each edge that lies
inside the clip (fade-out of one window + fade-in of the next = 1), and the weighted sum is
divided by the sum of the weights, so equal window predictions give back exactly that signal.
Only ``d`` is windowed: the output is ``L = (m + d)/2``, ``R = (m - d)/2`` with the input ``m``
itself, so ``L + R = m`` up to float rounding whatever the windows predict.

Each window has a gain (:func:`window_gains`): the mono window is normalised to a target RMS
for the model and the predicted difference is scaled back by the same factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tas_bench.runtime.errors import TasBenchError


@dataclass(frozen=True)
class Window:
    """One model window of a clip: clip index, window index, start sample, gain."""

    clip: int
    index: int
    start: int
    gain: float


def window_starts(n: int, width: int, overlap: int) -> list[int]:
    """Start samples of the windows covering ``n`` samples (hop ``width - overlap``).

    ``[0]`` when ``n <= width``; otherwise every hop, plus one aligned to the end.
    """
    if width < 1 or not 0 <= overlap < width:
        raise TasBenchError(f"window overlap {overlap} must be in [0, width = {width})",
                            field="window_overlap")
    if n <= width:
        return [0]
    hop = width - overlap
    starts = list(range(0, n - width + 1, hop))
    if starts[-1] != n - width:
        starts.append(n - width)
    return starts


def fade_weights(starts: list[int], width: int, overlap: int, n: int) -> list[np.ndarray]:
    """Float64 weight of each window: 1, with raised-cosine fades at the edges inside the clip.

    The fade-in of the window starting at ``s`` covers ``[s, s + overlap)``; its fade-out covers
    the last ``overlap`` samples. A fade is omitted at the clip's start and end (where no other
    window covers). Weights are strictly positive, so their sum never vanishes.
    """
    total = max(n, width)
    out = []
    ramp = np.sin(0.5 * np.pi * (np.arange(overlap) + 0.5) / max(overlap, 1)) ** 2
    for s in starts:
        w = np.ones(width)
        if overlap and s > 0:
            w[:overlap] = ramp
        if overlap and s + width < total:
            w[width - overlap:] = np.minimum(w[width - overlap:], ramp[::-1])
        out.append(w)
    return out


def split_windows(m: np.ndarray, width: int, overlap: int) -> tuple[list[int], np.ndarray]:
    """``(starts, windows (K, width) float32)`` of the 1-D signal ``m`` (zero-padded if short)."""
    x = np.asarray(m, dtype=np.float32)
    if x.ndim != 1 or x.size == 0:
        raise TasBenchError(f"expected a non-empty 1-D signal, got shape {x.shape}")
    if x.shape[0] < width:
        x = np.pad(x, (0, width - x.shape[0]))
    starts = window_starts(x.shape[0], width, overlap)
    return starts, np.stack([x[s:s + width] for s in starts])


def merge_windows(diffs: np.ndarray, starts: list[int], width: int, overlap: int, n: int) -> np.ndarray:
    """Cross-fade window predictions ``(K, width)`` into one float32 signal of ``n`` samples."""
    diffs = np.asarray(diffs, dtype=np.float64)
    if diffs.shape != (len(starts), width):
        raise TasBenchError(f"{diffs.shape} window predictions for {len(starts)} windows of {width}")
    total = max(n, width)
    acc = np.zeros(total)
    wsum = np.zeros(total)
    for d, s, w in zip(diffs, starts, fade_weights(starts, width, overlap, n)):
        acc[s:s + width] += w * d
        wsum[s:s + width] += w
    return (acc / wsum)[:n].astype(np.float32)


def window_gains(windows: np.ndarray, target_rms: float, min_rms: float = 1e-8) -> np.ndarray:
    """Per-window gain bringing the mono window to ``target_rms`` (1 for near-silent windows)."""
    rms = np.sqrt(np.mean(np.square(np.asarray(windows, dtype=np.float64)), axis=-1))
    return np.where(rms > min_rms, target_rms / np.maximum(rms, min_rms), 1.0)


def plan_windows(monos: list[np.ndarray], width: int, overlap: int,
                 target_rms: float) -> tuple[list[Window], np.ndarray, list[list[int]]]:
    """Windows of every clip: their descriptions, the gain-normalised mono windows
    ``(total, width)`` float32, and the start lists per clip (for :func:`merge_windows`)."""
    items: list[Window] = []
    stacks, all_starts = [], []
    for i, m in enumerate(monos):
        starts, wins = split_windows(m, width, overlap)
        gains = window_gains(wins, target_rms)
        all_starts.append(starts)
        for k, (s, g) in enumerate(zip(starts, gains)):
            items.append(Window(i, k, s, float(g)))
        stacks.append((wins * gains[:, None]).astype(np.float32))
    return items, np.concatenate(stacks, 0), all_starts
