"""System API contract: Mono-Mono, PseudoBinaural (tiny, trained by the test), registry."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.base import ClippedInputWarning, compose_binaural, validate_mono
from baselines.mono_mono import MonoMono
from tas_bench.errors import TasBenchError
from tas_bench.manifest import write_manifest

SR = 16000


def make_dataset(root: Path, n_train: int = 12, n_val: int = 2, n_test: int = 4,
                 seconds: float = 1.0, seed: int = 0) -> Path:
    """A tiny binaural dataset: noise louder and earlier on the side the prompt names."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    clips = []
    n = int(seconds * SR)
    k = 0
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        for _ in range(count):
            side = "left" if k % 2 == 0 else "right"
            s = rng.standard_normal(n).astype(np.float32) * 0.1
            far = 0.4 * np.concatenate([np.zeros(8, np.float32), s[:-8]])
            lr = np.stack([s, far]) if side == "left" else np.stack([far, s])
            cid = f"clip{k:03d}"
            (root / "audio").mkdir(parents=True, exist_ok=True)
            sf.write(root / "audio" / f"{cid}.wav", lr.T, SR, subtype="FLOAT")
            az = 60.0 if side == "left" else -60.0
            clips.append({
                "id": cid, "split": split, "audio": f"audio/{cid}.wav", "sample_rate": SR,
                "duration": seconds, "category": "single_doa_de",
                "sources": [{"label": "noise", "azimuth": az, "elevation": 10.0, "distance": 2.0,
                             "direction": [side, "front", "above"],
                             "provenance": {"package": "test", "file": "rng", "licence": "CC0"}}],
                "prompt": f"The noise is located {side}, front, above, 2m away.",
                "prompt_type": "A", "qa": [], "hrtf": None, "room": None, "seed": seed,
            })
            k += 1
    write_manifest(root, clips)
    return root
