"""Test helper: a tiny source corpus (four synthetic sounds, every split with two labels) for
simulator tests that must not depend on the Debian packages or their decoding time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from tas_bench.data.source_corpus import SourceCorpus, load_source, spec_from_file

SR = 16000
# (file stem, label, split)
_LAYOUT = [("tone_a", "tone", "train"), ("noise_a", "noise", "train"),
           ("tone_b", "tone", "val"), ("noise_b", "noise", "val"),
           ("chirp_b", "chirp", "test"), ("noise_c", "noise", "test")]


def tiny_corpus(folder: Path, sample_rate: int = SR) -> SourceCorpus:
    """A corpus of six short synthetic sources written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    sr = 22050
    t = np.arange(int(0.8 * sr)) / sr
    signals = {"tone": 0.3 * np.sin(2 * np.pi * 440 * t),
               "noise": 0.2 * rng.standard_normal(int(1.2 * sr)),
               "chirp": 0.3 * np.sin(2 * np.pi * (200 + 600 * t) * t)}
    items = []
    for k, (stem, label, split) in enumerate(_LAYOUT):
        pad = np.zeros(int(0.2 * sr))
        p = folder / f"{stem}.wav"
        sf.write(str(p), np.concatenate([pad, signals[label] * (1.0 + 0.1 * k), pad]), sr)
        items.append(load_source(spec_from_file(p, label, licence="CC0"), sample_rate,
                                 folder / "cache", split=split))
    return SourceCorpus(items=items, config={"test": "tiny"})
