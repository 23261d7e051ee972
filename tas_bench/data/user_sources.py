"""A researcher's own monaural sources for ``tas-bench simulate --sources DIR``.

What is taken from ``DIR``: every regular file under it (recursively, in sorted order of its
path relative to ``DIR``, so the file system's listing order never matters), except hidden
names (starting with ``.``, files and folders) and the labels CSV itself. Any format soundfile
reads (WAV, FLAC, OGG/Vorbis, AIFF, MP3, ...). A file with more than one channel is mixed down
to mono (the mean of its channels, as the built-in corpus does) and noted in the summary and in
its provenance (``channels``, ``mixed_to_mono``).

Labels, in this order:

* ``--labels FILE.csv``: a CSV with a header naming the columns ``file`` and ``label``
  (required), ``licence`` (or ``license``; optional, empty = ``unknown``) and ``split``
  (optional: ``train``/``val``/``test`` pins that file's split, empty = hashed as below).
  ``file`` is relative to ``DIR``; with a CSV the sources are exactly the files it lists
  (other files under ``DIR`` are counted as not used). A listed file that is missing, a
  duplicate entry, an absolute or ``..`` path, an empty label, a missing column or an unknown
  split is an error naming the CSV, the line and the file.
* else the first sub-folder: ``DIR/dog/bark1.wav`` and ``DIR/dog/near/b2.flac`` are ``dog``
  (``_`` and ``-`` become spaces);
* else, for files directly in ``DIR``, the file name without its extension, with ``_``, ``-``
  and digits turned into spaces (``dog_bark_01.wav`` -> ``dog bark``), as the built-in corpus
  labels an unknown file (:func:`tas_bench.data.source_corpus.label_for`).

Licence: from the CSV, else ``unknown``. Provenance of every source in the manifest: package
``user``, ``file`` its path relative to ``DIR``, its licence, its ``sha256``, ``channels``,
``source_rate`` (Hz), ``mixed_to_mono`` and ``label_from`` (``csv``/``folder``/``file name``).

A label holding a direction word of the prompts (left, right, front, behind, above, below)
is used but warned about in the summary (``direction_word_labels`` in ``dataset.json``).

Skipped, each named with the reason in the summary and in ``dataset.json``
(``config.corpus.user_sources.skipped``): a file soundfile cannot read (``not audio``:
format not recognised; ``unreadable``: truncated, empty, NaN/Inf, not a regular file), a
*silent* one (the peak of its mono mix below :data:`SILENCE_FLOOR_DBFS`, or nothing left
after the corpus' silence trimming) and a *too short* one (fewer than
:data:`~tas_bench.data.source_corpus.MIN_SOURCE_SAMPLES` samples at the dataset rate, the
simulator's minimum). When nothing usable is left it is an error naming ``DIR``.

Decoding, resampling (``scipy.signal.resample_poly`` through
:func:`tas_bench.runtime.audio_io.read_audio`), silence trimming, RMS normalisation and the
decoded-source cache are the built-in corpus' own (:func:`tas_bench.data.source_corpus.load_source`).
Splits too: each file's split is a hash of its path relative to ``DIR``
(:func:`~tas_bench.data.source_corpus.split_for_group`, 75/10/15 % train/val/test), so
train, val and test never share a file, a file keeps its split when others are added, and the
same folder gives the same split wherever it lies.
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from tas_bench.data.geometry import DIRECTION_AXES
from tas_bench.data.source_corpus import (
    MIN_SOURCE_SAMPLES,
    SPLIT_FRACTIONS,
    SourceCorpus,
    SourceItem,
    SourceSpec,
    build_corpus,
    label_for,
    load_source,
    trim_config,
)
from tas_bench.runtime.audio_io import read_audio
from tas_bench.runtime.errors import AudioError, TasBenchError
from tas_bench.runtime.fileio import sha256_file

#: The ``package`` recorded in the provenance of a user's source.
USER_PACKAGE = "user"
#: A source whose mono mix never reaches this peak level (dB re full scale 1.0) is silent:
#: -80 dBFS is about 3 LSB of 16-bit audio, below any real recording's noise floor.
SILENCE_FLOOR_DBFS = -80.0
SPLITS = ("train", "val", "test")
_COLUMN_ALIASES = {"license": "licence"}
#: At most this many file names in a one-line error message (the summary lists them all).
_NAMES_IN_ERROR = 5


@dataclass(frozen=True)
class SkippedSource:
    """A file under ``DIR`` that is not used: path relative to ``DIR``, kind, reason."""

    file: str
    kind: str  # "not audio" | "unreadable" | "silent" | "too short" | "link"
    reason: str


@dataclass
class UserSourceReport:
    """What :func:`load_user_sources` took from a folder and what it left out, and why."""

    folder: str
    labels: str | None = None
    labels_sha256: str | None = None
    used: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedSource] = field(default_factory=list)
    not_in_labels: list[str] = field(default_factory=list)

    def direction_labels(self) -> dict[str, list[str]]:
        """Labels of used files that contain a direction word of the prompts (left, right,
        front, behind, above, below), with those words: such prompts read as contradictory
        ("the left bell is located right, ...")."""
        words = {w for axis in DIRECTION_AXES for w in axis}
        out: dict[str, list[str]] = {}
        for u in self.used:
            hits = [w for w in re.findall(r"[a-z]+", u["label"].lower()) if w in words]
            if hits:
                out[u["label"]] = sorted(set(hits))
        return dict(sorted(out.items()))

    @property
    def mixed_to_mono(self) -> list[str]:
        """Files with more than one channel (mixed down to mono), relative to the folder."""
        return [u["file"] for u in self.used if u["channels"] > 1]

    def split_counts(self) -> dict[str, int]:
        """Usable files per split."""
        return {s: sum(1 for u in self.used if u["split"] == s) for s in SPLITS}

    def to_dict(self) -> dict[str, Any]:
        """The record kept in ``dataset.json`` (``config.corpus.user_sources``)."""
        return {
            "dir": self.folder,
            "labels": None if self.labels is None else {"file": self.labels,
                                                         "sha256": self.labels_sha256},
            "used": len(self.used), "splits": self.split_counts(),
            "mixed_to_mono": self.mixed_to_mono,
            "skipped": [{"file": s.file, "kind": s.kind, "reason": s.reason}
                        for s in self.skipped],
            "not_in_labels": self.not_in_labels,
            "direction_word_labels": self.direction_labels(),
            "silence_floor_dbfs": SILENCE_FLOOR_DBFS, "min_samples": MIN_SOURCE_SAMPLES,
        }

    def summary_lines(self) -> list[str]:
        """Human-readable summary: counts, mixed-down files, every skipped file by name."""
        c = self.split_counts()
        how = f"labels from {self.labels}" if self.labels else "labels from sub-folders/file names"
        lines = [f"user sources: {len(self.used)} file(s) from {self.folder} ({how}; "
                 f"train {c['train']}, val {c['val']}, test {c['test']})"]
        mixed = self.mixed_to_mono
        if mixed:
            more = len(mixed) - 10
            lines.append(f"  mixed down to mono: {len(mixed)} file(s): {', '.join(mixed[:10])}"
                         + (f" and {more} more (all in dataset.json)" if more > 0 else ""))
        for s in self.skipped:
            lines.append(f"  skipped {s.file}: {s.reason}")
        for label, words in self.direction_labels().items():
            lines.append(f"  warning: label {label!r} contains the direction word(s) "
                         f"{', '.join(words)}, which the prompts use for the geometry "
                         f"(its prompts may read as contradictory; relabel it with --labels)")
        if self.not_in_labels:
            shown = ", ".join(self.not_in_labels[:10])
            more = len(self.not_in_labels) - 10
            lines.append(f"  not in {Path(self.labels or '').name}, not used: "
                         f"{len(self.not_in_labels)} file(s): {shown}"
                         + (f" and {more} more" if more > 0 else ""))
        return lines


@dataclass(frozen=True)
class _Entry:
    file: str
    label: str
    licence: str
    label_from: str
    split: str | None = None


def _clean_label(text: str) -> str:
    return " ".join(re.sub(r"[_\-]+", " ", text).split())


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def list_files(root: Path, exclude: Path | None = None) -> tuple[list[str], list[SkippedSource]]:
    """Regular-file candidates under ``root`` as sorted POSIX paths relative to it (hidden
    names and ``exclude`` left out), and the links to folders, which are not followed."""
    files: list[str] = []
    skipped: list[SkippedSource] = []
    ex = exclude.resolve() if exclude is not None else None
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if _is_hidden(e.name):
                continue
            r = f"{rel}/{e.name}" if rel else e.name
            if e.is_dir(follow_symlinks=False):
                stack.append(r)
            elif e.is_symlink() and e.is_dir():
                skipped.append(SkippedSource(r, "link", "a link to a folder (not followed)"))
            elif ex is None or Path(e.path).resolve() != ex:
                files.append(r)
    return sorted(files), sorted(skipped, key=lambda s: s.file)


def _folder_entries(files: list[str]) -> list[_Entry]:
    out = []
    for rel in files:
        parts = rel.split("/")
        label = _clean_label(parts[0]) if len(parts) > 1 else ""
        if label:
            out.append(_Entry(rel, label, "unknown", "folder"))
        else:
            out.append(_Entry(rel, label_for(USER_PACKAGE, parts[-1])[0], "unknown", "file name"))
    return out


def read_labels(csv_path: Path, root: Path) -> list[_Entry]:
    """The entries of a labels CSV (see the module docstring), in file order.

    Raises :class:`TasBenchError` naming the CSV (and the line and file) for a missing or
    unreadable CSV, a missing column, an empty file or label cell, an absolute or ``..``
    path, a listed file that does not exist, a duplicate entry or an unknown split.
    """
    if not csv_path.is_file():
        raise TasBenchError("labels CSV not found" if not csv_path.exists()
                            else "labels CSV is not a regular file", path=csv_path,
                            field="--labels")
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TasBenchError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                            path=csv_path, field="--labels") from None
    except OSError as exc:
        raise TasBenchError(f"cannot be read ({exc.strerror})", path=csv_path,
                            field="--labels") from None
    reader = csv.reader(text.splitlines())
    try:
        header = next(reader)
    except StopIteration:
        raise TasBenchError("empty labels CSV (expected a header: file,label,licence)",
                            path=csv_path, field="--labels") from None
    except csv.Error as exc:
        raise TasBenchError(f"line 1: {exc}", path=csv_path, field="--labels") from None
    cols = [_COLUMN_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    missing = [c for c in ("file", "label") if c not in cols]
    if missing:
        raise TasBenchError(f"line 1: missing column(s) {', '.join(missing)} (the header must "
                            f"name file and label, optionally licence and split; found "
                            f"{', '.join(h.strip() for h in header) or 'nothing'})",
                            path=csv_path, field="--labels")
    dup_cols = sorted({c for c in cols if c and cols.count(c) > 1})
    if dup_cols:
        raise TasBenchError(f"line 1: column(s) named twice: {', '.join(dup_cols)}",
                            path=csv_path, field="--labels")
    idx = {c: i for i, c in enumerate(cols)}
    entries: list[_Entry] = []
    seen: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(cols):
                raise TasBenchError(f"line {line}: {len(row)} fields, the header has "
                                    f"{len(cols)}", path=csv_path, field="--labels")

            def cell(name: str, row: list[str] = row) -> str:
                i = idx.get(name)
                return row[i].strip() if i is not None and i < len(row) else ""

            raw = cell("file")
            if not raw:
                raise TasBenchError(f"line {line}: empty file cell", path=csv_path,
                                    field="--labels")
            pp = PurePosixPath(raw)
            if pp.is_absolute() or ".." in pp.parts:
                raise TasBenchError(f"line {line}: {raw}: the file must be a path relative to "
                                    f"{root} inside it", path=csv_path, field="--labels")
            rel = pp.as_posix()
            if rel in seen:
                raise TasBenchError(f"line {line}: {rel}: duplicate entry (already on line "
                                    f"{seen[rel]})", path=csv_path, field="--labels")
            seen[rel] = line
            target = root / rel
            if not target.exists():
                raise TasBenchError(f"line {line}: {rel}: no such file in {root}",
                                    path=csv_path, field="--labels")
            if target.is_dir():
                raise TasBenchError(f"line {line}: {rel}: is a folder in {root}, not a file",
                                    path=csv_path, field="--labels")
            label = " ".join(cell("label").split())
            if not label:
                raise TasBenchError(f"line {line}: {rel}: empty label", path=csv_path,
                                    field="--labels")
            split = cell("split").lower() or None
            if split is not None and split not in SPLITS:
                raise TasBenchError(f"line {line}: {rel}: split {cell('split')!r} is not one of "
                                    f"{', '.join(SPLITS)}", path=csv_path, field="--labels")
            entries.append(_Entry(rel, label, cell("licence") or "unknown", "csv", split))
    except csv.Error as exc:
        raise TasBenchError(f"line {reader.line_num}: {exc}", path=csv_path,
                            field="--labels") from None
    if not entries:
        raise TasBenchError("the labels CSV lists no file", path=csv_path, field="--labels")
    return entries


def _samples_at(n: int, sr_from: int, sr_to: int) -> int:
    """Length of ``n`` samples at ``sr_from`` Hz once resampled to ``sr_to`` Hz (resample_poly)."""
    ratio = Fraction(int(sr_to), int(sr_from))
    return -(-n * ratio.numerator // ratio.denominator)


def _check_file(path: Path, rel: str, sample_rate: int) -> tuple[int, int] | SkippedSource:
    """(channels, rate in Hz) of a usable file, or why it is skipped."""
    try:
        audio = read_audio(path, dtype="float64")
    except AudioError as exc:
        if "Format not recognised" in exc.reason:
            return SkippedSource(rel, "not audio", "not an audio file (soundfile does not "
                                                   "recognise its format)")
        return SkippedSource(rel, "unreadable", f"unreadable: {exc.reason}")
    mono = audio.samples.mean(axis=0)
    n_out = _samples_at(mono.shape[0], audio.sample_rate, sample_rate)
    if n_out < MIN_SOURCE_SAMPLES:
        return SkippedSource(rel, "too short", f"too short: {mono.shape[0]} sample(s) at "
                             f"{audio.sample_rate} Hz = {n_out} at {sample_rate} Hz, the "
                             f"simulator needs at least {MIN_SOURCE_SAMPLES}")
    peak = float(np.max(np.abs(mono)))
    if not peak >= 10 ** (SILENCE_FLOOR_DBFS / 20):
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.1f}"
        return SkippedSource(rel, "silent", f"silent: the peak of its mono mix is {level} "
                             f"dBFS, below the {SILENCE_FLOOR_DBFS:g} dBFS floor")
    return audio.channels, audio.source_rate


def load_user_sources(folder: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None,
                      *, sample_rate: int = 16000, cache_dir: Path | None = None,
                      on_report: Callable[[UserSourceReport], None] | None = None,
                      ) -> tuple[list[SourceItem], UserSourceReport]:
    """Decode the usable sources of ``folder`` (mono float32 at ``sample_rate`` Hz, trimmed
    and RMS-normalised, sorted by key) and the report of what was used and skipped (handed
    to ``on_report`` first, so it shows even when nothing usable is left).

    Raises :class:`TasBenchError` naming the folder when it is missing or holds no usable
    file, and naming the CSV for a bad labels file (see :func:`read_labels`).
    """
    root = Path(folder)
    if not root.exists():
        raise TasBenchError("sources folder not found", path=root, field="--sources")
    if not root.is_dir():
        raise TasBenchError("is not a folder", path=root, field="--sources")
    root = root.resolve()
    csv_path = None if labels is None else Path(labels)
    try:
        files, skipped = list_files(root, exclude=csv_path)
    except OSError as exc:
        raise TasBenchError(f"cannot be listed ({exc.strerror}: {exc.filename})", path=root,
                            field="--sources") from None
    report = UserSourceReport(folder=str(root))
    if csv_path is not None:
        entries = read_labels(csv_path, root)
        report.labels = str(csv_path)
        report.labels_sha256 = sha256_file(csv_path)
        listed = {e.file for e in entries}
        report.not_in_labels = [f for f in files if f not in listed]
        skipped = [s for s in skipped if s.file in listed]
        entries = sorted(entries, key=lambda e: e.file)
    else:
        entries = _folder_entries(files)
    items: list[SourceItem] = []
    for e in entries:
        path = root / e.file
        checked = _check_file(path, e.file, sample_rate)
        if isinstance(checked, SkippedSource):
            skipped.append(checked)
            continue
        channels, rate = checked
        spec = SourceSpec(
            key=f"{USER_PACKAGE}/{e.file}", label=e.label, kind=USER_PACKAGE,
            package=USER_PACKAGE, file=str(path), origin=e.file, licence=e.licence,
            group=f"{USER_PACKAGE}/{e.file}",
            extra=(("channels", channels), ("source_rate", rate),
                   ("mixed_to_mono", channels > 1), ("label_from", e.label_from)))
        try:
            item = load_source(spec, sample_rate, cache_dir, split=e.split)
        except AudioError as exc:
            kind = "silent" if "silent" in exc.reason else "unreadable"
            skipped.append(SkippedSource(e.file, kind, exc.reason if kind == "silent"
                                         else f"unreadable: {exc.reason}"))
            continue
        items.append(item)
        report.used.append({"file": e.file, "label": e.label, "licence": e.licence,
                            "split": item.split, "channels": channels, "sha256": item.sha256})
    report.skipped = sorted(skipped, key=lambda s: s.file)
    if on_report is not None:
        on_report(report)
    if not items:
        if not report.skipped:
            raise TasBenchError("no source files in the folder (hidden files are ignored)",
                                path=root, field="--sources")
        names = ", ".join(f"{s.file} ({s.kind})" for s in report.skipped[:_NAMES_IN_ERROR])
        more = len(report.skipped) - _NAMES_IN_ERROR
        raise TasBenchError(f"no usable source file: {len(report.skipped)} skipped: {names}"
                            + (f" and {more} more" if more > 0 else ""), path=root,
                            field="--sources")
    return sorted(items, key=lambda it: it.spec.key), report


def user_corpus(folder: str | os.PathLike[str], labels: str | os.PathLike[str] | None = None,
                *, sample_rate: int = 16000, with_builtin: bool = False,
                cache_dir: Path | None = None,
                on_report: Callable[[UserSourceReport], None] | None = None,
                ) -> tuple[SourceCorpus, UserSourceReport]:
    """The source corpus of ``tas-bench simulate --sources``: the folder's sources alone, or
    with ``with_builtin`` together with the built-in Debian corpus (one list sorted by key).

    Its config (``dataset.json`` ``config.corpus``) carries the report under ``user_sources``.
    """
    items, report = load_user_sources(folder, labels, sample_rate=sample_rate,
                                      cache_dir=cache_dir, on_report=on_report)
    if with_builtin:
        builtin = build_corpus(sample_rate, cache_dir=cache_dir)
        items = sorted(builtin.items + items, key=lambda it: it.spec.key)
        config = dict(builtin.config)
        config["packages"] = sorted({*config["packages"], USER_PACKAGE})
    else:
        config = {"packages": [USER_PACKAGE], "trim": trim_config(),
                  "split_fractions": SPLIT_FRACTIONS, "sample_rate": sample_rate}
    config["user_sources"] = report.to_dict()
    return SourceCorpus(items=items, config=config), report


def check_splits(corpus: SourceCorpus, counts: dict[str, int], seed: int, where: str) -> None:
    """Refuse, naming ``where``, a corpus that lacks sources for a split with clips to make
    (or two different labels for a split whose clips include two-source ones)."""
    from tas_bench.data.simulate import category_plan

    have = {s: len(corpus.split(s)) for s in SPLITS}
    detail = ", ".join(f"{s} {have[s]}" for s in SPLITS)
    for split in SPLITS:
        k = counts.get(split, 0)
        if not k:
            continue
        if not have[split]:
            raise TasBenchError(f"no usable source falls in the {split} split, which has {k} "
                                f"clip(s) to make (sources per split, by a hash of each "
                                f"file's path: {detail}); add files, pin splits with a "
                                f"'split' column in --labels, or pass --n-{split} 0",
                                path=where, field="--sources")
        labels = {it.spec.label.lower() for it in corpus.split(split)}
        if len(labels) < 2 and any(c != "single_doa_de" for c in category_plan(split, k, seed)):
            raise TasBenchError(f"the {split} split's sources all have the label "
                                f"{next(iter(labels))!r}; its two-source clips need two "
                                f"different labels", path=where, field="--sources")


def resolve_counts(preset: str, n_train: int | None, n_val: int | None,
                   n_test: int | None) -> dict[str, int]:
    """Clips per split as ``simulate_dataset`` resolves them (the preset's unless given)."""
    from tas_bench.data.presets import PRESETS

    base = PRESETS.get(preset, {})
    given = {"train": n_train, "val": n_val, "test": n_test}
    return {s: base.get(s, 0) if v is None else v for s, v in given.items()}


def corpus_for_simulate(sources: str | os.PathLike[str] | None,
                        labels: str | os.PathLike[str] | None = None, *,
                        with_builtin: bool = False, sample_rate: int = 16000,
                        preset: str = "demo", seed: int = 0, n_train: int | None = None,
                        n_val: int | None = None, n_test: int | None = None,
                        on_report: Callable[[UserSourceReport], None] | None = None,
                        ) -> tuple[SourceCorpus | None, UserSourceReport | None]:
    """What ``tas-bench simulate`` (and :func:`tas_bench.simulate`) hand the simulator for
    ``--sources/--labels/--with-builtin``: (None, None) without ``sources`` (the built-in
    corpus); else the checked corpus and its report, handed to ``on_report`` (if given) before
    anything is refused, so the summary shows even then. ``--labels`` or
    ``--with-builtin`` without ``--sources`` is an error."""
    if sources is None:
        if labels is not None:
            raise TasBenchError("--labels needs --sources DIR (the folder its file paths are "
                                "relative to)", field="--labels")
        if with_builtin:
            raise TasBenchError("--with-builtin adds the built-in sources to --sources DIR; "
                                "without --sources the built-in corpus is used anyway",
                                field="--with-builtin")
        return None, None
    corpus, report = user_corpus(sources, labels, sample_rate=sample_rate,
                                 with_builtin=with_builtin, on_report=on_report)
    check_splits(corpus, resolve_counts(preset, n_train, n_val, n_test), seed, report.folder)
    return corpus, report


__all__ = ["SILENCE_FLOOR_DBFS", "USER_PACKAGE", "SkippedSource", "UserSourceReport",
           "check_splits", "corpus_for_simulate", "list_files", "load_user_sources",
           "read_labels", "resolve_counts", "user_corpus"]
