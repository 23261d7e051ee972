"""Import SpatialSoundQA QA records (BAT) by rendering their binaural clips locally.

Inputs (all local; nothing is downloaded):

* ``records``: a JSON list or a JSONL file of objects with the fields ``audio_id``,
  ``reverb_id``, ``audio_id2``, ``reverb_id2`` (null for single-source items), ``question_id``,
  ``question_type``, ``question``, ``answer``.
* ``audio_dir``: mono source recordings; ``audio_id`` is a path relative to it without suffix
  (BAT: ``eval/audio/YI-HlrcP6Qg4`` -> ``{audio_dir}/eval/audio/YI-HlrcP6Qg4.wav``), ``.wav`` or
  ``.flac``. If that exact path is missing the file is searched recursively by its base name
  (it must then be unique).
* ``rir_dir``: binaural room impulse responses; ``reverb_id`` is a path relative to it (BAT:
  ``q9vSo1VnCiC/0.npy``, relative to ``{reverb_data_root}/binaural``). ``.npy`` arrays of shape
  (2, N) (or (N, 2)) at ``rir_sample_rate`` Hz, loaded with ``allow_pickle=False``, or 2-channel
  ``.wav``. Without a suffix ``.npy`` then ``.wav`` are tried.

Rendering follows BAT's data loader (X-LANCE/SLAM-LLM
``examples/seld_spatialsoundqa/dataset/spatial_audio_dataset.py``): first channel of the source,
resampled to ``sample_rate``, RMS-normalised to -14 dBFS, convolved with the RIR (full
convolution), cut or zero-padded to ``duration`` seconds; a second source is rendered the same
way and the clip is the average of the two. Written as 32-bit float wav (values may exceed 1).

Records are grouped into one clip per (audio_id, reverb_id, audio_id2, reverb_id2): the pairing
of source and RIR is the one the records fix, never random (Spatial-AST issue #6). The clip id is
``ssqa-`` + the first 16 hex digits of the sha256 of that key.

Question types -> QA categories:

* ``DOA``, ``MIXUP_SINGLE_DOA`` (answer "right, behind, above; 3.5m"): two items with the
  record's question and answer, category DOA (the direction words are scored) and DE (the
  distance is scored).
* types containing ``DIRECTION`` -> Direction; containing ``DISTANCE`` -> Distance;
  ``MIXUP_NONBINARY_SOURCE`` -> Direction if the question uses a direction word, Distance if it
  speaks of distance (far/close/near/distance), otherwise skipped.
* ``CLASSIFICATION``, ``MIXUP_SINGLE_CLASSIFICATION`` and any other type: skipped, counted in the
  summary (the manifest allows only DOA/DE/Direction/Distance).

Geometry: a single-source clip with a DOA answer gets one source whose direction words are the
answer's and whose position is the octant centre (azimuth ±45° front / ±135° behind, positive =
left; elevation +30° above / -30° below), distance from the answer, marked
``position_from: "answer_octant"``; its label is taken from the question ("... sound of the
<label> ...") or is ``"source"``; its prompt is a type-A prompt made from that source (phrasing
seeded by the clip id). Two-source clips, and clips without a DOA answer, have no known geometry:
category ``real``, no sources, empty prompt, ``n_sources`` kept in the clip.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from tas_bench.data.geometry import quantize_distance
from tas_bench.data.manifest import Clip, Provenance, QAItem, Source
from tas_bench.data.qa import parse_direction, parse_distance
from tas_bench.runtime.audio_io import check_sample_rate, read_audio, require_regular_file, resample
from tas_bench.runtime.errors import TasBenchError

RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "audio_id": (str,),
    "reverb_id": (str,),
    "audio_id2": (str, type(None)),
    "reverb_id2": (str, type(None)),
    "question_id": (int, str),
    "question_type": (str,),
    "question": (str,),
    "answer": (str,),
}
SKIPPED_TYPES = ("CLASSIFICATION", "MIXUP_SINGLE_CLASSIFICATION")
DOA_TYPES = ("DOA", "MIXUP_SINGLE_DOA")
#: Loudness every source is normalised to before convolution (BAT), dBFS RMS.
TARGET_DBFS = -14.0
_DIRECTION_WORDS = re.compile(r"\b(left|right|front|behind|back|above|below)\b", re.IGNORECASE)
_DISTANCE_WORDS = re.compile(r"\b(far|farther|further|close|closer|near|nearer|distance)\b",
                             re.IGNORECASE)
#: A number preceded by a minus sign ("-5m", "- 3.5 meters"): no distance can be negative.
_NEGATIVE_NUMBER = re.compile(r"(?<![\w.])[-\u2212]\s*(?:\d+(?:\.\d+)?|\.\d+)")
_LABEL_RE = re.compile(r"\bsound of (?:the |a |an )?(.+?)(?:\s+(?:coming|located|come|is|in|on|"
                       r"from|relative)\b|[?.,]|$)", re.IGNORECASE)


@dataclass
class _Group:
    key: tuple[str, str, str | None, str | None]
    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (where, record)


def read_records(path: Path, problems: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """Records of a JSON-list or JSONL file as (location, record); problems name file + line."""
    require_regular_file(path, "records file", error=TasBenchError)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TasBenchError(f"unreadable records file ({exc})", path=path) from None
    out: list[tuple[str, Any]] = []
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TasBenchError(f"malformed JSON (line {exc.lineno}: {exc.msg})",
                                path=path) from None
        out = [(f"item {i}", obj) for i, obj in enumerate(data)]
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                out.append((f"line {n}", json.loads(line)))
            except json.JSONDecodeError as exc:
                problems.append(f"{path}: line {n}: malformed JSON ({exc.msg} at column {exc.colno})")
    good = []
    for where, obj in out:
        if not isinstance(obj, dict):
            problems.append(f"{path}: {where}: expected a JSON object")
            continue
        bad = False
        for name, types in RECORD_FIELDS.items():
            if name not in obj:
                problems.append(f"{path}: {where}: field {name!r} missing")
                bad = True
            elif isinstance(obj[name], bool) or not isinstance(obj[name], types):
                problems.append(f"{path}: {where}: field {name!r} has type "
                                f"{type(obj[name]).__name__}")
                bad = True
        if not bad and (obj["audio_id2"] is None) != (obj["reverb_id2"] is None):
            problems.append(f"{path}: {where}: audio_id2 and reverb_id2 must both be set or "
                            "both be null")
            bad = True
        if not bad:
            good.append((where, obj))
    if not out and not problems:
        problems.append(f"{path}: no records")
    return good


def qa_category(question_type: str, question: str) -> str | None:
    """Our QA category for a SpatialSoundQA question type (None: not a spatial question)."""
    if question_type in SKIPPED_TYPES:
        return None
    if question_type in DOA_TYPES:
        return "DOA"
    if "DIRECTION" in question_type:
        return "Direction"
    if "DISTANCE" in question_type:
        return "Distance"
    if question_type == "MIXUP_NONBINARY_SOURCE":
        if _DIRECTION_WORDS.search(question):
            return "Direction"
        if _DISTANCE_WORDS.search(question):
            return "Distance"
    return None


def octant_source(answer: str, label: str, audio_id: str, reverb_id: str) -> Source | None:
    """A source at the octant centre named by a DOA answer ("right, behind, above; 3.5m").

    None when the answer lacks one of the three direction words or a positive distance.
    """
    words = parse_direction(answer)
    dist = parse_distance(answer)
    if words is None or dist is None or quantize_distance(dist) <= 0:
        return None
    lateral, frontal, vertical = words
    az = (45.0 if frontal == "front" else 135.0) * (1.0 if lateral == "left" else -1.0)
    el = 30.0 if vertical == "above" else -30.0
    return Source(
        label=label, azimuth=az, elevation=el, distance=quantize_distance(dist),
        direction=list(words),
        provenance=Provenance(package="SpatialSoundQA", file=audio_id,
                              licence="see SpatialSoundQA / AudioSet terms",
                              extra={"reverb_id": reverb_id}),
        extra={"position_from": "answer_octant"},
    )


def label_from_question(question: str) -> str:
    """The sound named in a question ("... the sound of the dog coming from?") or "source"."""
    m = _LABEL_RE.search(question)
    label = m.group(1).strip() if m else ""
    return label if label else "source"


class _Finder:
    """Locate files under a root by relative path (with suffix fallbacks) or unique base name."""

    def __init__(self, root: Path, suffixes: tuple[str, ...]) -> None:
        self.root, self.suffixes = root, suffixes
        self._index: dict[str, list[Path]] | None = None

    def _by_name(self) -> dict[str, list[Path]]:
        if self._index is None:
            self._index = {}
            for dirpath, _, files in os.walk(self.root):
                for f in files:
                    p = Path(dirpath) / f
                    if p.suffix.lower() in self.suffixes:
                        self._index.setdefault(p.stem, []).append(p)
                        self._index.setdefault(p.name, []).append(p)
        return self._index

    def find(self, ident: str) -> tuple[Path | None, str]:
        rel = Path(ident)
        if rel.is_absolute() or ".." in rel.parts:
            return None, f"{ident!r} must be a path relative to {self.root}"
        cands = [self.root / ident] if rel.suffix.lower() in self.suffixes else []
        cands += [self.root / f"{ident}{s}" for s in self.suffixes]
        for c in cands:
            if c.is_file():
                return c, ""
        hits = self._by_name().get(rel.name, [])
        if len(hits) == 1:
            return hits[0], ""
        if len(hits) > 1:
            return None, (f"{ident!r} is ambiguous under {self.root}: "
                          f"{', '.join(str(h) for h in hits[:3])}")
        return None, f"{cands[0]}: file not found (also searched {self.root} by name)"


def load_rir(path: Path, sample_rate: int, rir_sample_rate: int) -> np.ndarray:
    """A binaural RIR (2, N) at ``sample_rate`` Hz from .npy or 2-channel audio."""
    if path.suffix.lower() == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise TasBenchError(f"unreadable .npy RIR ({exc})", path=path) from None
        if x.ndim != 2 or 2 not in x.shape:
            raise TasBenchError(f"RIR must have shape (2, N), got {x.shape}", path=path)
        if x.shape[0] != 2:
            x = x.T
        if x.shape[1] == 0:
            raise TasBenchError("empty RIR (0 samples)", path=path)
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise TasBenchError("RIR contains NaN/Inf or non-numeric values", path=path)
        return resample(x.astype(np.float64), rir_sample_rate, sample_rate)
    return read_audio(path, channels=2, sample_rate=sample_rate, dtype="float64").samples


def _render_one(src: np.ndarray, rir: np.ndarray, n: int) -> np.ndarray:
    rms = float(np.sqrt(np.mean(src ** 2)))
    if rms > 0:
        src = src * (10 ** (TARGET_DBFS / 20) / rms)
    y = fftconvolve(src[None, :], rir, mode="full", axes=-1)
    out = np.zeros((2, n))
    m = min(n, y.shape[1])
    out[:, :m] = y[:, :m]
    return out


def _clip_id(key: tuple[Any, ...]) -> str:
    return "ssqa-" + hashlib.sha256(json.dumps(list(key)).encode("utf-8")).hexdigest()[:16]


def import_spatialsoundqa(
    records: str | os.PathLike[str],
    audio_dir: str | os.PathLike[str],
    rir_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    sample_rate: int = 32000,
    limit: int | None = None,
    split: str = "test",
    duration: float = 10.0,
    rir_sample_rate: int = 32000,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Render SpatialSoundQA records into the dataset folder ``out`` (see module docstring).

    ``limit`` keeps the first N clips (in order of first appearance in the records). All
    problems (malformed lines, missing fields, duplicate question ids, an answer stating a
    negative distance, missing or bad audio/RIR files, rates outside [1000, 384000] Hz) are
    raised together as one TasBenchError before the manifest is written. Returns the
    dataset.json content with counts of clips, QA items and skipped records.
    """
    from tas_bench.data.importers import (
        check_out,
        prepare_out,
        raise_problems,
        write_dataset,
        write_float_wav,
    )
    from tas_bench.data.manifest import SPLITS
    from tas_bench.data.prompts import make_prompt

    records, audio_dir, rir_dir, out = Path(records), Path(audio_dir), Path(rir_dir), Path(out)
    for p, what in ((audio_dir, "audio folder"), (rir_dir, "RIR folder")):
        if not p.is_dir():
            raise TasBenchError(f"{what} not found", path=p)
    if split not in SPLITS:
        raise TasBenchError(f"{split!r} is not one of {list(SPLITS)}", field="split")
    if not duration > 0:
        raise TasBenchError(f"duration {duration} must be > 0 seconds", field="duration")
    if limit is not None and limit < 1:
        raise TasBenchError(f"limit {limit} must be >= 1", field="limit")
    sample_rate = check_sample_rate(sample_rate, field="sample_rate")
    rir_sample_rate = check_sample_rate(rir_sample_rate, field="rir_sample_rate")
    check_out(out, overwrite)

    problems: list[str] = []
    recs = read_records(records, problems)
    groups: dict[tuple[Any, ...], _Group] = {}
    seen_q: dict[tuple[str, Any], str] = {}
    for where, r in recs:
        qkey = (r["question_type"], r["question_id"])
        if qkey in seen_q:
            problems.append(f"{records}: {where}: duplicate question_id {r['question_id']!r} "
                            f"for {r['question_type']} (first at {seen_q[qkey]})")
            continue
        seen_q[qkey] = where
        if (qa_category(r["question_type"], r["question"]) is not None
                and _NEGATIVE_NUMBER.search(r["answer"])):
            # parse_distance reads "-5m" as 5.0: refuse rather than import a wrong distance
            problems.append(f"{records}: {where}: question_id {r['question_id']!r}: answer "
                            f"{r['answer']!r} states a negative distance")
            continue
        key = (r["audio_id"], r["reverb_id"], r["audio_id2"], r["reverb_id2"])
        groups.setdefault(key, _Group(key)).records.append((where, r))
    chosen = list(groups.values())[: limit or None]

    audio_find = _Finder(audio_dir, (".wav", ".flac"))
    rir_find = _Finder(rir_dir, (".npy", ".wav"))
    paths: dict[tuple[Any, ...], list[tuple[Path, Path]]] = {}
    for g in chosen:
        pairs = []
        for aid, rid in ((g.key[0], g.key[1]), (g.key[2], g.key[3])):
            if aid is None:
                continue
            a, why_a = audio_find.find(aid)
            r, why_r = rir_find.find(rid)
            where = g.records[0][0]
            if a is None:
                problems.append(f"{records}: {where}: audio_id {why_a}")
            if r is None:
                problems.append(f"{records}: {where}: reverb_id {why_r}")
            if a is not None and r is not None:
                pairs.append((a, r))
        paths[g.key] = pairs
    raise_problems(problems, "SpatialSoundQA import", records)

    n = int(round(duration * sample_rate))
    rendered: dict[tuple[Any, ...], np.ndarray] = {}
    rir_cache: dict[Path, np.ndarray] = {}
    for g in chosen:
        mix = np.zeros((2, n))
        ok = True
        for a_path, r_path in paths[g.key]:
            try:
                src = read_audio(a_path, sample_rate=sample_rate, dtype="float64").samples[0]
                if r_path not in rir_cache:
                    rir_cache[r_path] = load_rir(r_path, sample_rate, rir_sample_rate)
                mix += _render_one(src, rir_cache[r_path], n)
            except TasBenchError as exc:
                problems.append(str(exc))
                ok = False
        if ok:
            rendered[g.key] = mix / len(paths[g.key])
    raise_problems(sorted(set(problems)), "SpatialSoundQA import", records)

    prepare_out(out, overwrite)
    clips: list[Clip] = []
    skipped: dict[str, int] = {}
    n_qa = {"DOA": 0, "DE": 0, "Direction": 0, "Distance": 0}
    for g in chosen:
        cid = _clip_id(g.key)
        rel = f"audio/{cid}.wav"
        write_float_wav(out / rel, rendered[g.key], sample_rate)
        qa: list[QAItem] = []
        sources: list[Source] = []
        for _, r in g.records:
            cat = qa_category(r["question_type"], r["question"])
            if cat is None:
                skipped[r["question_type"]] = skipped.get(r["question_type"], 0) + 1
                continue
            extra = {"question_id": r["question_id"]}
            if cat == "DOA":
                qa.append(QAItem(r["question"], r["answer"], "DOA", r["question_type"],
                                 {**extra, "scored_part": "direction"}))
                if parse_distance(r["answer"]) is not None:
                    qa.append(QAItem(r["question"], r["answer"], "DE", r["question_type"],
                                     {**extra, "scored_part": "distance"}))
                if g.key[2] is None and not sources:
                    s = octant_source(r["answer"], label_from_question(r["question"]),
                                      g.key[0], g.key[1])
                    if s is not None:
                        sources.append(s)
            else:
                qa.append(QAItem(r["question"], r["answer"], cat, r["question_type"], extra))
        for it in qa:
            n_qa[it.category] += 1
        n_src = 1 if g.key[2] is None else 2
        if sources:
            rng = np.random.default_rng(int(cid[5:], 16))
            prompt, ptype, category = make_prompt("A", sources, rng), "A", "single_doa_de"
        else:
            prompt, ptype, category = "", None, "real"
        clips.append(Clip(
            id=cid, split=split, audio=rel, sample_rate=int(sample_rate),
            duration=n / float(sample_rate), category=category, sources=sources, prompt=prompt,
            prompt_type=ptype, qa=qa, hrtf=None, room=None, seed=None,
            extra={"n_sources": n_src, "spatialsoundqa": {
                "audio_id": g.key[0], "reverb_id": g.key[1], "audio_id2": g.key[2],
                "reverb_id2": g.key[3]}},
        ))
    info = {
        "name": records.stem,
        "source": str(records.resolve()),
        "audio_dir": str(audio_dir.resolve()),
        "rir_dir": str(rir_dir.resolve()),
        "importer": "spatialsoundqa",
        "render": {"sample_rate": sample_rate, "duration": duration, "target_dbfs": TARGET_DBFS,
                   "rir_sample_rate_npy": rir_sample_rate, "mix": "mean of sources",
                   "subtype": "FLOAT"},
        "n_records": len(recs),
        "n_groups_total": len(groups),
        "qa_counts": n_qa,
        "skipped_records": skipped,
    }
    return write_dataset(out, clips, info)
