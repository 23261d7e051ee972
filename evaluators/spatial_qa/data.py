"""Assessor inputs from a dataset folder: audio at 32 kHz, front-end features, QA examples and
geometry labels. Every pairing comes from the manifest (no random RIR per run: Spatial-AST
issue #6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from evaluators.spatial_qa.encoder import (
    BOUND_WORDS,
    SAMPLE_RATE,
    SpatialFrontEnd,
    geometry_targets,
    loudness_normalize,
)
from tas_bench.data.geometry import DIRECTION_AXES
from tas_bench.data.manifest import Clip, Dataset
from tas_bench.runtime.audio_io import read_audio, resample


@dataclass(frozen=True)
class QAExample:
    """One question about one clip: index into the clip list, question, answer, category."""

    clip: int
    question: str
    answer: str
    category: str
    question_type: str


def prepare_audio(x: np.ndarray, sample_rate: int) -> np.ndarray:
    """(2, N) binaural at ``sample_rate`` -> float32 (2, M) at 32 kHz, RMS -14 dBFS."""
    y = resample(np.asarray(x, dtype=np.float64), sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else x
    return loudness_normalize(np.asarray(y))


def clip_features(front: SpatialFrontEnd, audio: list[np.ndarray], batch: int = 8) -> torch.Tensor:
    """Raw front-end features (N, C, frames, 128) of prepared 32 kHz clips (equal lengths per
    batch are not required: each clip is transformed alone)."""
    out = []
    with torch.no_grad():
        for x in audio:
            out.append(front.raw(torch.from_numpy(np.ascontiguousarray(x))[None].float())[0])
    return torch.stack(out) if out else torch.zeros(0, front.channels, front.frames, 128)


def split_features(front: SpatialFrontEnd, ds: Dataset, clips: list[Clip]) -> torch.Tensor:
    """Raw front-end features (N, C, frames, 128) of ``clips``' reference audio, read and
    transformed one clip at a time (memory: the features, never all the audio)."""
    out = torch.zeros(len(clips), front.channels, front.frames, 128)
    with torch.no_grad():
        for i, c in enumerate(clips):
            a = read_audio(ds.audio_path(c), channels=2, dtype="float64")
            x = prepare_audio(a.samples, a.sample_rate)
            out[i] = front.raw(torch.from_numpy(np.ascontiguousarray(x))[None].float())[0]
    return out


def load_split_audio(ds: Dataset, clips: list[Clip]) -> list[np.ndarray]:
    """Reference audio of ``clips``, prepared for the encoder."""
    out = []
    for c in clips:
        a = read_audio(ds.audio_path(c), channels=2, dtype="float64")
        out.append(prepare_audio(a.samples, a.sample_rate))
    return out


def qa_examples(clips: list[Clip]) -> list[QAExample]:
    """Every QA item of ``clips`` in manifest order."""
    return [QAExample(i, q.question, q.answer, q.category, q.question_type)
            for i, c in enumerate(clips) for q in c.qa]


#: The relational clip categories whose QA items :func:`pair_relation_examples` adds.
RELATIONAL_CATEGORIES = ("relative_direction", "relative_distance")


def pair_relation_examples(clips: list[Clip], seed: int) -> list[QAExample]:
    """More relational training items from the geometry the manifest already holds: for every
    two-source clip, the items (:func:`tas_bench.data.qa.make_qa`) of each relational category
    it was not simulated for -- the Direction items of a ``double_doa_de`` or
    ``relative_distance`` clip, the Distance items of a ``relative_direction`` one -- where the
    pair allows them (an axis counts only with the sources at least ``MIN_RELATION_GAP``
    apart on it). Phrasings and subject order drawn from a generator seeded by (seed, clip
    index), so the same clips and seed give the same items."""
    from tas_bench.data.qa import make_qa

    out = []
    for i, c in enumerate(clips):
        if len(c.sources) != 2:
            continue
        rng = np.random.default_rng([seed, 5, i])
        for category in RELATIONAL_CATEGORIES:
            if category == c.category:
                continue
            try:
                items = make_qa(category, c.sources, rng)
            except ValueError:  # same labels, or no axis with a large enough gap
                continue
            out += [QAExample(i, q.question, q.answer, q.category, q.question_type) for q in items]
    return out


def label_vocabulary(clips: list[Clip]) -> list[str]:
    """Sorted source labels of ``clips`` (the class head's classes)."""
    return sorted({s.label for c in clips for s in c.sources})


def geometry_labels(clips: list[Clip], labels: list[str]) -> dict[str, torch.Tensor]:
    """Pretraining targets per clip: azimuth/elevation/distance bins of the first source and
    the multi-hot class vector over ``labels`` (unknown labels left out); for the class-bound
    heads, per class k: ``present`` (B, K) bool, ``words`` (B, K, 3) 1 where the source of class
    k is left / front / above, ``word_mask`` (B, K, 3) where that axis has a word (a horizontal
    source has no above/below word), ``bound_dist`` (B, K) its distance bin."""
    index = {lab: i for i, lab in enumerate(labels)}
    k = max(1, len(labels))
    az, el, dist = [], [], []
    cls = torch.zeros(len(clips), k)
    present = torch.zeros(len(clips), k, dtype=torch.bool)
    words = torch.zeros(len(clips), k, len(BOUND_WORDS))
    word_mask = torch.zeros(len(clips), k, len(BOUND_WORDS), dtype=torch.bool)
    bound_dist = torch.zeros(len(clips), k, dtype=torch.long)
    axes = {w: i for i, axis in enumerate(DIRECTION_AXES) for w in axis}
    for i, c in enumerate(clips):
        s = c.sources[0]
        a, e, d = geometry_targets(s.azimuth, s.elevation, s.distance)
        az.append(a)
        el.append(e)
        dist.append(d)
        for src in c.sources:
            if src.label not in index:
                continue
            j = index[src.label]
            cls[i, j] = 1.0
            present[i, j] = True
            bound_dist[i, j] = geometry_targets(src.azimuth, src.elevation, src.distance)[2]
            for w in src.direction:
                if w in axes:
                    words[i, j, axes[w]] = float(w in BOUND_WORDS)
                    word_mask[i, j, axes[w]] = True
    return {"az": torch.tensor(az), "el": torch.tensor(el), "dist": torch.tensor(dist), "cls": cls,
            "present": present, "words": words, "word_mask": word_mask, "bound_dist": bound_dist}
