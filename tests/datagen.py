"""Tiny datasets made by the tests themselves (no simulator needed): binaural noise clips with
an interaural delay and level difference, and a valid manifest describing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tas_bench.data.geometry import direction_words
from tas_bench.data.manifest import Provenance, Source, write_manifest
from tas_bench.runtime.audio_io import write_wav


def src(label: str, az: float, el: float, d: float) -> Source:
    """A source at (azimuth, elevation) degrees and ``d`` metres with matching direction words."""
    return Source(label, az, el, d, list(direction_words(az, el)), Provenance("t", "f", "cc0"))


def binaural_noise(seed: int, seconds: float = 1.0, sr: int = 16000, side: int = 1,
                   delay: int = 8, gain: float = 0.5) -> np.ndarray:
    """Noise on the left (side=1) or right (side=-1): the far ear is delayed and attenuated."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    s = rng.standard_normal(n + delay) * 0.1
    near, far = s[delay:], s[:n] * gain
    return np.stack([near, far] if side > 0 else [far, near])


def clip_record(cid: str, split: str, audio: str, sr: int, seconds: float, az: float,
                el: float = 20.0, dist: float = 2.0, **over: Any) -> dict[str, Any]:
    """A valid manifest line for a single-source clip."""
    words = list(direction_words(az, el))
    rec = {
        "id": cid, "split": split, "audio": audio, "sample_rate": sr, "duration": seconds,
        "category": "single_doa_de",
        "sources": [{"label": "noise", "azimuth": az, "elevation": el, "distance": dist,
                     "direction": words,
                     "provenance": {"package": "tests", "file": "generated", "licence": "CC0"}}],
        "prompt": f"The noise is located {', '.join(words)}, {dist:g}m away.",
        "prompt_type": "A",
        "qa": [{"question": "Where is the sound?", "answer": ", ".join(words), "category": "DOA",
                "question_type": "DOA"}],
        "hrtf": None, "room": None, "seed": 0,
    }
    rec.update(over)
    return rec


def make_dataset(root: Path, n: int = 4, seconds: float = 1.0, sr: int = 16000,
                 split: str = "test") -> list[dict[str, Any]]:
    """Write ``n`` clips (alternating left/right) and their manifest under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    recs = []
    for i in range(n):
        side = 1 if i % 2 == 0 else -1
        x = binaural_noise(i, seconds, sr, side=side)
        rel = f"audio/{split}/clip{i:03d}.wav"
        write_wav(root / rel, x, sr)
        recs.append(clip_record(f"clip{i:03d}", split, rel, sr, seconds, 60.0 * side))
    write_manifest(root, recs)
    return recs


def write_predictions(pred: Path, data: Path, recs: list[dict[str, Any]], mode: str = "copy",
                      seed: int = 100) -> None:
    """Predictions for every clip: the reference itself (``copy``), the reference plus noise
    (``noisy``) or the mono mix on both ears (``mono``)."""
    import soundfile as sf

    pred.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for r in recs:
        x, sr = sf.read(str(data / r["audio"]), always_2d=True, dtype="float64")
        x = x.T
        if mode == "noisy":
            x = x + 0.01 * rng.standard_normal(x.shape)
        elif mode == "mono":
            m = x.sum(0) / 2
            x = np.stack([m, m])
        write_wav(pred / f"{r['id']}.wav", x, sr, subtype="FLOAT")
