"""Round-trip error of a codec on the true ``d = L - R`` of a dataset.

For each clip: ``m = L + R``, ``d = L - R``; the clip is cut into the model's windows
(:mod:`baselines.tas.windowing`, gain-normalised like at sampling), each window's ``d`` is
encoded and decoded given its mono, the windows are cross-faded back, and the result
``L' = (m + d')/2``, ``R' = (m - d')/2`` is compared with the reference:

* ``stft``: the FAIR-Play STFT distance of :mod:`evaluators.signal` (peak-normalised),
* ``itd_error_us``: ``|ITD' - ITD|`` in microseconds, GCC-PHAT of :mod:`evaluators.localiser`,
* ``ild_error_db``: ``|ILD' - ILD|`` in dB (broadband),
* ``d_rel_error``: ``max |d' - d| / max |d|``.

``pool`` > 1 also measures a *time-pooled* latent (each run of ``pool`` latent rows replaced by
its mean) to show how much of the cue survives smoothing over time (what a model that averages
instead of sampling would produce). Run as
``python -m baselines.tas.roundtrip DATA [--split train] [--max-clips N] [--pool 4]``.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import numpy as np
import torch

from baselines.tas.codec import Codec, RelativeSTFTCodec
from baselines.tas.windowing import merge_windows, plan_windows, split_windows
from evaluators.localiser import interaural_cues
from evaluators.signal import signal_metrics_batch
from tas_bench.data.manifest import load_dataset
from tas_bench.runtime.audio_io import read_audio
from tas_bench.runtime.errors import TasBenchError


def _pooled(z: torch.Tensor, pool: int) -> torch.Tensor:
    h = z.shape[2]
    out = z.clone()
    for s in range(0, h, pool):
        out[:, :, s:s + pool] = z[:, :, s:s + pool].mean(2, keepdim=True)
    return out


def roundtrip_clip(codec: Codec, binaural: np.ndarray, *, latent_frames: int, overlap: int,
                   target_rms: float = 0.1, pool: int = 1) -> np.ndarray:
    """The binaural ``(2, T)`` after the codec round trip of ``d`` (and optional pooling)."""
    x = np.asarray(binaural, dtype=np.float64)
    m, d = (x[0] + x[1]).astype(np.float32), (x[0] - x[1]).astype(np.float32)
    width = codec.window_samples(latent_frames)
    wins, mono_w, starts = plan_windows([m], width, overlap, target_rms)
    gains = np.array([w.gain for w in wins])
    _, diff_w = split_windows(d, width, overlap)
    diff_w = diff_w * gains[:, None]  # the mono's gain, as at sampling
    mt, dt = torch.from_numpy(mono_w), torch.from_numpy(diff_w.astype(np.float32))
    z = codec.encode_diff(dt, mt)
    if pool > 1:
        z = _pooled(z, pool)
    rec = codec.decode_diff(z, mt).numpy().astype(np.float64) / gains[:, None]
    dd = merge_windows(rec, starts[0], width, overlap, m.shape[0]).astype(np.float64)
    mm = m.astype(np.float64)
    return np.stack([(mm + dd) / 2, (mm - dd) / 2])


def measure_roundtrip(codec: Codec, data: str, *, split: str | None = "train",
                      max_clips: int | None = None, latent_frames: int = 32,
                      overlap_s: float = 0.25, pool: int = 1) -> dict[str, Any]:
    """Mean and max of the round-trip errors (module docstring) over a dataset split."""
    ds = load_dataset(data)
    clips = ds.split(split) if split else list(ds.clips)
    clips = clips[:max_clips] if max_clips else clips
    if not clips:
        raise TasBenchError(f"no clips in split {split!r}", path=data)
    overlap = int(round(overlap_s * codec.sample_rate))
    rows: dict[str, list[float]] = {"stft": [], "itd_error_us": [], "ild_error_db": [], "d_rel_error": []}
    for c in clips:
        ref = read_audio(ds.audio_path(c), channels=2, sample_rate=codec.sample_rate).samples.astype(np.float64)
        rec = roundtrip_clip(codec, ref, latent_frames=latent_frames, overlap=overlap, pool=pool)
        sig = signal_metrics_batch(rec[None].astype(np.float32), ref[None].astype(np.float32))
        rows["stft"].append(float(sig["stft"][0]))
        a, b = interaural_cues(rec, codec.sample_rate), interaural_cues(ref, codec.sample_rate)
        rows["itd_error_us"].append(abs(a.itd_s - b.itd_s) * 1e6)
        rows["ild_error_db"].append(abs(a.ild_db - b.ild_db))
        d_ref, d_rec = ref[0] - ref[1], rec[0] - rec[1]
        rows["d_rel_error"].append(float(np.abs(d_rec - d_ref).max() / max(np.abs(d_ref).max(), 1e-12)))
    out: dict[str, Any] = {"codec": codec.config(), "data": str(data), "split": split,
                           "clips": len(clips), "latent_frames": latent_frames,
                           "window_s": codec.window_samples(latent_frames) / codec.sample_rate,
                           "overlap_s": overlap / codec.sample_rate, "pool": pool}
    for k, v in rows.items():
        arr = np.array([x for x in v if math.isfinite(x)])
        out[k] = {"mean": float(arr.mean()) if arr.size else math.nan,
                  "max": float(arr.max()) if arr.size else math.nan}
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: print the round-trip figures of the default ``relstft`` codec as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--split", default="train")
    ap.add_argument("--max-clips", type=int, default=None)
    ap.add_argument("--latent-frames", type=int, default=32)
    ap.add_argument("--pool", type=int, default=1)
    a = ap.parse_args(argv)
    res = measure_roundtrip(RelativeSTFTCodec(), a.data, split=a.split, max_clips=a.max_clips,
                            latent_frames=a.latent_frames, pool=a.pool)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
