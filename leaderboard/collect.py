"""Read every results folder under a directory, tolerating extra keys, reporting bad ones.

A results folder is a directory holding ``results.json`` (written by ``tas-bench score``) and
usually ``per_clip.csv``. Problems (missing/malformed results.json, unknown schema_version,
incomplete results, duplicate system+dataset, NaN metric values, unreadable per_clip.csv) are
collected as :class:`BoardProblem` with the path they concern; the good folders are still read.
A folder that is not all of one run (a file whose sha256 differs from the ``files`` map of its
results.json, e.g. a ``per_clip.csv`` written by a later, killed run) is left out with the file
and the reason (:func:`tas_bench.runtime.results.check_results_files`); schema 1.0 files, which have no
map, are read with a warning.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tas_bench.runtime.results import PER_CLIP_NAME, RESULTS_NAME, check_results_files
from tas_bench.runtime.results import READABLE_SCHEMAS as SCHEMA_VERSIONS

#: Per-clip columns that describe the signals rather than rank systems (shown, never bolded).
INFORMATIONAL = frozenset({"itd_pred_us", "itd_ref_us", "ild_pred_db", "ild_ref_db"})

#: Evaluator of the metrics tas-bench knows, used to explain a missing cell when the results
#: file does not list the metric at all (e.g. its evaluator was skipped).
KNOWN_EVALUATOR = {
    **{m: "signal" for m in ("stft", "env", "wav", "snr", "mag", "phase")},
    **{m: "generation" for m in ("fd", "fad", "kl", "kl_sigmoid", "is")},
    **{m: "cues" for m in ("itd_error_us", "ild_error_db", "ild_band_error_db", "ic_error",
                           "lr_correct", "octant_correct", "lr_correct_ref",
                           "octant_correct_ref", "lr_undecided", "lr_undecided_ref",
                           *INFORMATIONAL)},
    **{m: "spatial_qa" for m in ("doa_gap", "de_gap", "direction_gap", "distance_gap",
                                 "doa_acc_ref", "doa_acc_pred", "de_acc_ref", "de_acc_pred",
                                 "direction_acc_ref", "direction_acc_pred", "distance_acc_ref",
                                 "distance_acc_pred", "unparseable_pred", "unparseable_ref",
                                 "unknown_items")},
}


@dataclass(frozen=True)
class BoardProblem:
    """A problem with one input path; ``severity`` is ``error`` (folder left out) or ``warning``."""

    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


@dataclass
class MetricValue:
    """One metric of a results file: mean, std, 95 % CI, n and direction (None = unranked)."""

    name: str
    mean: float | None
    std: float | None
    ci95: tuple[float, float] | None
    n: int | None
    higher_is_better: bool | None
    unit: str
    per_clip: bool
    evaluator: str
    problem: str | None = None
    description: str = ""


@dataclass
class MeasuredResult:
    """A results folder that could be read: identity, provenance and metrics."""

    folder: Path
    rel: str
    system: str
    revision: str | None
    dataset_name: str
    fingerprint: str
    split: str
    n_clips: int | None
    dataset_path: str | None
    predictions_path: str | None
    tas_bench_version: str
    git_commit: str | None
    git_dirty: bool | None
    created_utc: str
    evaluators: dict[str, dict[str, Any]]
    skipped: dict[str, str]
    metrics: dict[str, MetricValue]
    per_clip: dict[str, dict[str, float]] | None = None  # metric -> clip id -> value
    per_clip_categories: dict[str, str] = field(default_factory=dict)
    per_clip_problem: str | None = None

    @property
    def code_label(self) -> str:
        """Code version as ``tas-bench X (commit abc1234[, dirty])``."""
        s = f"tas-bench {self.tas_bench_version}"
        if self.git_commit:
            s += f" @{self.git_commit[:7]}" + ("+dirty" if self.git_dirty else "")
        return s

    @property
    def dataset_label(self) -> str:
        """Dataset as ``name/split (fp 1234abcd5678)``."""
        return f"{self.dataset_name}/{self.split} (fp {self.fingerprint[:12]})"

    def evaluator_signature(self, name: str) -> tuple[str, str, str] | None:
        """(version, config hash, weights hashes) of an evaluator, or None if not listed."""
        ev = self.evaluators.get(name)
        if not isinstance(ev, dict):
            return None
        weights = ev.get("weights") or {}
        wsig = ",".join(
            f"{k}={(v or {}).get('sha256', '?') if isinstance(v, dict) else v}"
            for k, v in sorted(weights.items())
        )
        return (str(ev.get("version", "?")), str(ev.get("config_hash", "?")), wsig)

    def missing_reason(self, metric: str, evaluator_hint: str | None = None) -> str:
        """Why ``metric`` has no value in this result (for a footnote)."""
        mv = self.metrics.get(metric)
        if mv is not None and mv.problem:
            return mv.problem
        ev = mv.evaluator if mv is not None else (evaluator_hint or KNOWN_EVALUATOR.get(metric))
        if ev and ev in self.skipped:
            return str(self.skipped[ev])
        if ev and ev not in self.evaluators:
            return f"evaluator {ev!r} was not run"
        if ev:
            return f"not reported by the {ev!r} evaluator in results.json"
        return "not in results.json"


@dataclass
class Collection:
    """Everything read from a results directory."""

    results: list[MeasuredResult]
    problems: list[BoardProblem]


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x)


def _parse_metric(name: str, m: Any, where: str, problems: list[BoardProblem]) -> MetricValue | None:
    if not isinstance(m, dict):
        problems.append(BoardProblem(where, f"metrics.{name}: expected an object", "warning"))
        return None
    mean = _num(m.get("mean"))
    problem = None
    if mean is None or not math.isfinite(mean):
        problem = ("mean is NaN/null in results.json" if "mean" in m
                   else "mean missing from results.json")
        problems.append(BoardProblem(where, f"metrics.{name}.mean is not a finite number "
                                     f"({m.get('mean')!r}); shown as —", "warning"))
        mean = None
    ci = m.get("ci95")
    ci95: tuple[float, float] | None = None
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        lo, hi = _num(ci[0]), _num(ci[1])
        if lo is not None and hi is not None and math.isfinite(lo) and math.isfinite(hi):
            ci95 = (lo, hi)
    std = _num(m.get("std"))
    hib = m.get("higher_is_better")
    if name in INFORMATIONAL or not isinstance(hib, bool):
        hib = None
    n = m.get("n")
    return MetricValue(
        name=name, mean=mean, std=std if std is not None and math.isfinite(std) else None,
        ci95=ci95, n=int(n) if isinstance(n, int) and not isinstance(n, bool) else None,
        higher_is_better=hib, unit=str(m.get("unit") or ""),
        per_clip=bool(m.get("per_clip", True)),
        evaluator=str(m.get("evaluator") or KNOWN_EVALUATOR.get(name, "?")), problem=problem,
        description=str(m.get("description") or ""),
    )


def read_per_clip(path: Path) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Read ``per_clip.csv``: metric -> {clip id: value} (empty/NaN cells dropped), categories.

    Raises ValueError with a message when the file is malformed.
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or header[0] != "id":
            raise ValueError("first column must be 'id'")
        if len(set(header)) != len(header):
            raise ValueError("duplicate column names")
        metric_cols = [c for c in header[1:] if c != "category"]
        values: dict[str, dict[str, float]] = {c: {} for c in metric_cols}
        cats: dict[str, str] = {}
        seen: set[str] = set()
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"line {line_no}: {len(row)} fields, header has {len(header)}")
            rec = dict(zip(header, row))
            cid = rec["id"]
            if cid in seen:
                raise ValueError(f"line {line_no}: duplicate clip id {cid!r}")
            seen.add(cid)
            if "category" in rec:
                cats[cid] = rec["category"]
            for c in metric_cols:
                cell = rec[c].strip()
                if not cell:
                    continue
                try:
                    v = float(cell)
                except ValueError:
                    raise ValueError(f"line {line_no}: column {c}: not a number {cell!r}") from None
                if math.isfinite(v):
                    values[c][cid] = v
    return values, cats


def read_result_folder(folder: Path, root: Path, problems: list[BoardProblem]) -> MeasuredResult | None:
    """Read one results folder; append problems; return None if it cannot be used."""
    rel = _rel(folder, root)
    path = folder / RESULTS_NAME
    where = _rel(path, root)
    if not path.is_file():
        problems.append(BoardProblem(rel, "missing results.json; folder left out"))
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        problems.append(BoardProblem(where, f"malformed JSON ({exc}); folder left out"))
        return None
    if not isinstance(doc, dict):
        problems.append(BoardProblem(where, "malformed results.json: expected a JSON object; folder left out"))
        return None
    sv = doc.get("schema_version")
    if sv not in SCHEMA_VERSIONS:
        problems.append(BoardProblem(where, f"unknown schema_version {sv!r} (this leaderboard reads "
                                     f"{', '.join(SCHEMA_VERSIONS)}); folder left out"))
        return None
    if doc.get("kind", "tas-bench-results") != "tas-bench-results":
        problems.append(BoardProblem(where, f"kind is {doc.get('kind')!r}, not 'tas-bench-results'; folder left out"))
        return None
    if doc.get("complete") is not True:
        problems.append(BoardProblem(where, "results are incomplete (complete != true); folder left out"))
        return None
    # the folder must be all of one run: per_clip.csv etc. as results.json recorded them
    file_errors, file_warnings = check_results_files(folder, doc)
    for name, reason in file_warnings:
        if name == PER_CLIP_NAME and not (folder / name).exists():
            continue  # reported below with what it costs
        problems.append(BoardProblem(_rel(folder / name, root) if name else rel, reason, "warning"))
    if file_errors:
        for name, reason in file_errors:
            problems.append(BoardProblem(_rel(folder / name, root), f"{reason}; folder left out"))
        return None
    try:
        system = doc["system"]
        dataset = doc["dataset"]
        name = str(system["name"])
        fingerprint = str(dataset["fingerprint"])
        metrics_doc = doc["metrics"]
        if not isinstance(metrics_doc, dict):
            raise TypeError("metrics must be an object")
    except (KeyError, TypeError) as exc:
        problems.append(BoardProblem(where, f"malformed results.json: missing or bad field {exc}; folder left out"))
        return None
    code = doc.get("code") if isinstance(doc.get("code"), dict) else {}
    metrics: dict[str, MetricValue] = {}
    for mname, m in metrics_doc.items():
        mv = _parse_metric(str(mname), m, where, problems)
        if mv is not None:
            metrics[str(mname)] = mv
    evaluators = doc.get("evaluators") if isinstance(doc.get("evaluators"), dict) else {}
    skipped = doc.get("skipped") if isinstance(doc.get("skipped"), dict) else {}
    preds = doc.get("predictions") if isinstance(doc.get("predictions"), dict) else {}
    res = MeasuredResult(
        folder=folder, rel=rel, system=name,
        revision=None if system.get("revision") is None else str(system.get("revision")),
        dataset_name=str(dataset.get("name") or "?"), fingerprint=fingerprint,
        split=str(dataset.get("split") or "?"),
        n_clips=dataset.get("n_clips") if isinstance(dataset.get("n_clips"), int) else None,
        dataset_path=dataset.get("path"), predictions_path=preds.get("path"),
        tas_bench_version=str(code.get("tas_bench_version", "?")),
        git_commit=code.get("git_commit"), git_dirty=code.get("git_dirty"),
        created_utc=str(doc.get("created_utc", "")),
        evaluators={str(k): v for k, v in evaluators.items() if isinstance(v, dict)},
        skipped={str(k): str(v) for k, v in skipped.items()},
        metrics=metrics,
    )
    per_clip_name = (doc.get("paths") or {}).get("per_clip", PER_CLIP_NAME) if isinstance(doc.get("paths"), dict) else PER_CLIP_NAME
    pc_path = folder / str(per_clip_name)
    if pc_path.is_file():
        try:
            res.per_clip, res.per_clip_categories = read_per_clip(pc_path)
        except (ValueError, OSError, UnicodeDecodeError, csv.Error) as exc:
            res.per_clip_problem = f"malformed per_clip.csv ({exc})"
            problems.append(BoardProblem(_rel(pc_path, root), f"{res.per_clip_problem}; "
                                         "no significance tests or per-clip figures for this row", "warning"))
    else:
        res.per_clip_problem = "no per_clip.csv"
        problems.append(BoardProblem(_rel(pc_path, root), "per_clip.csv missing; no significance "
                                     "tests or per-clip figures for this row", "warning"))
    return res


def _rel(p: Path, root: Path) -> str:
    try:
        r = p.resolve().relative_to(root.resolve())
        return str(Path(root.name) / r) if str(r) != "." else root.name
    except ValueError:
        return str(p)


def find_result_folders(root: Path) -> tuple[list[Path], list[Path]]:
    """Folders under ``root`` that hold results, and top-level sub-folders that hold none.

    A folder holds results if it contains ``results.json`` or ``per_clip.csv``. Hidden entries
    (temporary files of atomic writes, ``.git``...) are ignored.
    """
    found: list[Path] = []
    for p in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        if p.is_file() and p.name in (RESULTS_NAME, PER_CLIP_NAME) and p.parent not in found:
            found.append(p.parent)
    if (root / RESULTS_NAME).is_file() or (root / PER_CLIP_NAME).is_file():
        found = [root] + [f for f in found if f != root]
    empty = [
        d for d in sorted(root.iterdir())
        if d.is_dir() and not d.name.startswith(".")
        and not any(f == d or d in f.parents for f in found)
    ]
    return sorted(set(found)), empty


def collect(root: Path) -> Collection:
    """Read all results under ``root``; duplicates (same system, dataset fingerprint and split)
    are all left out and reported, since picking one silently would hide a choice."""
    problems: list[BoardProblem] = []
    folders, empty = find_result_folders(root)
    for d in empty:
        problems.append(BoardProblem(_rel(d, root), "missing results.json (none in this folder or below); left out"))
    read: list[MeasuredResult] = []
    for folder in folders:
        r = read_result_folder(folder, root, problems)
        if r is not None:
            read.append(r)
    by_key: dict[tuple[str, str, str], list[MeasuredResult]] = {}
    for r in read:
        by_key.setdefault((r.system, r.fingerprint, r.split), []).append(r)
    results: list[MeasuredResult] = []
    for (system, fp, split), rs in by_key.items():
        if len(rs) > 1:
            paths = ", ".join(r.rel for r in rs)
            for r in rs:
                problems.append(BoardProblem(
                    r.rel, f"duplicate results for system {system!r} on dataset fingerprint "
                    f"{fp[:12]} split {split!r} (found in: {paths}); all of them left out — remove "
                    "or rename all but one"))
            continue
        results.append(rs[0])
    results.sort(key=lambda r: (r.fingerprint, r.system, r.rel))
    return Collection(results=results, problems=problems)
