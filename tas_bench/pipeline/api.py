"""The Python API: what the ``tas-bench`` command line does, as functions for notebooks.

Every function here is a thin layer over the function the matching CLI command calls
(``simulate`` -> :func:`tas_bench.data.simulate.simulate_dataset`, ``generate`` ->
:func:`tas_bench.pipeline.generate.generate_predictions`, ``score`` ->
:func:`tas_bench.pipeline.scoring.compute_scores` + :func:`tas_bench.runtime.results.write_results`,
``leaderboard`` -> :func:`leaderboard.build.build_tables`), so the two cannot disagree.
Results in memory are pandas DataFrames; :meth:`Results.save` writes exactly the files
``tas-bench score`` writes. Bad input raises :class:`tas_bench.runtime.errors.TasBenchError` with the
message the CLI prints.

Heavy modules (torch, the evaluators, the systems) are imported inside the functions, so
``import tas_bench`` stays cheap.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tas_bench.runtime.errors import TasBenchError

if TYPE_CHECKING:
    import pandas as pd

    from tas_bench.data.manifest import Dataset as ManifestDataset

__all__ = ["Dataset", "Predictions", "Results", "generate", "leaderboard", "list_systems",
           "load_dataset", "load_results", "load_system", "score", "simulate"]

PathLike = str | os.PathLike[str]

#: Columns of :attr:`Results.metrics`, in order (the index is the metric name).
METRIC_COLUMNS = ("evaluator", "mean", "std", "ci_low", "ci_high", "n", "higher_is_better",
                  "unit", "per_clip", "description")
#: Per-source columns of :attr:`Dataset.clips` (``source1_azimuth``, ``source2_azimuth``, ...).
SOURCE_FIELDS = ("label", "azimuth", "elevation", "distance")


# ----------------------------------------------------------------------------- datasets

@dataclass
class Dataset:
    """A dataset folder (``manifest.jsonl`` + wavs) with its clips as a DataFrame.

    ``clips``: one row per clip in manifest order with ``id, split, category, prompt,
    prompt_type, duration`` (s), ``sample_rate`` (Hz), ``audio`` (path relative to the folder),
    ``n_sources`` and, per source k = 1, 2, ..., ``sourcek_label``, ``sourcek_azimuth`` (degrees,
    SOFA: counter-clockwise from the front), ``sourcek_elevation`` (degrees, up) and
    ``sourcek_distance`` (m); NaN where a clip has fewer sources.
    """

    path: Path
    manifest: ManifestDataset
    clips: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def fingerprint(self) -> str:
        """sha256 over the manifest bytes and every audio file (the id results cite)."""
        from tas_bench.data.manifest import dataset_fingerprint

        return dataset_fingerprint(self.manifest.root, self.manifest.clips)

    def split(self, name: str) -> pd.DataFrame:
        """The rows of :attr:`clips` in split ``name`` (train, val or test)."""
        return self.clips[self.clips["split"] == name]

    def __len__(self) -> int:
        return len(self.clips)

    def __repr__(self) -> str:
        counts = self.clips["split"].value_counts().to_dict() if len(self.clips) else {}
        return f"Dataset({str(self.path)!r}, {len(self.clips)} clips {counts})"


def _clips_frame(ds: ManifestDataset) -> pd.DataFrame:
    import pandas as pd

    n_src = max((len(c.sources) for c in ds.clips), default=0)
    rows = []
    for c in ds.clips:
        row: dict[str, Any] = {"id": c.id, "split": c.split, "category": c.category,
                               "prompt": c.prompt, "prompt_type": c.prompt_type,
                               "duration": float(c.duration), "sample_rate": int(c.sample_rate),
                               "audio": c.audio, "n_sources": len(c.sources)}
        for k in range(n_src):
            s = c.sources[k] if k < len(c.sources) else None
            for f in SOURCE_FIELDS:
                v = getattr(s, f) if s is not None else None
                row[f"source{k + 1}_{f}"] = (v if f == "label" else
                                             (math.nan if v is None else float(v)))
        rows.append(row)
    columns = ["id", "split", "category", "prompt", "prompt_type", "duration", "sample_rate",
               "audio", "n_sources"] + [f"source{k + 1}_{f}" for k in range(n_src)
                                        for f in SOURCE_FIELDS]
    return pd.DataFrame(rows, columns=columns)


def load_dataset(path: PathLike) -> Dataset:
    """Load a dataset folder (``tas-bench validate``'s checks; any problem raises
    :class:`TasBenchError`) and list its clips as a DataFrame (see :class:`Dataset`)."""
    from tas_bench.data.manifest import load_dataset as _load

    ds = _load(Path(path))
    return Dataset(path=ds.root, manifest=ds, clips=_clips_frame(ds), info=dict(ds.info))


def simulate(out: PathLike, preset: str = "demo", seed: int = 0, *, hrtf: PathLike = "kemar",
             n_train: int | None = None, n_val: int | None = None, n_test: int | None = None,
             duration: float = 10.0, sample_rate: int = 16000, directions: str = "measured",
             workers: int | None = None, force: bool = False, progress: bool = False,
             sources: PathLike | None = None, labels: PathLike | None = None,
             with_builtin: bool = False, audio_format: str = "wav") -> Dataset:
    """Simulate a binaural dataset into ``out`` (``tas-bench simulate``; same options: split
    sizes default to the preset's, ``duration`` in seconds, ``sample_rate`` in Hz; ``sources``,
    ``labels``, ``with_builtin`` as ``--sources DIR --labels FILE.csv --with-builtin``;
    ``audio_format`` ``wav`` or ``flac`` as ``--audio-format``) and load it. Sharded runs:
    :func:`tas_bench.data.simulate.simulate_dataset` ``shard=(I, N)`` and
    :func:`tas_bench.data.shards.merge_shards`.

    Same seed and options, same bytes as the command line.
    """
    from tas_bench.data.simulate import default_workers, simulate_dataset

    workers = default_workers() if workers is None else workers
    if workers < 1:  # the check (and message) of `tas-bench simulate`
        raise TasBenchError(f"{workers} must be >= 1", field="--workers")
    from tas_bench.data.user_sources import corpus_for_simulate

    corpus, _ = corpus_for_simulate(sources, labels, with_builtin=with_builtin,
                                    sample_rate=sample_rate, preset=preset, seed=seed,
                                    n_train=n_train, n_val=n_val, n_test=n_test)
    simulate_dataset(out, preset=preset, seed=seed, hrtf=hrtf, n_train=n_train, n_val=n_val,
                     n_test=n_test, duration=duration, sample_rate=sample_rate,
                     progress=progress, force=force, workers=workers, directions=directions,
                     corpus=corpus, audio_format=audio_format)
    return load_dataset(out)


# ----------------------------------------------------------------------------- systems

def load_system(name: str, device: str = "cpu") -> Any:
    """The registered system ``name`` (a :class:`baselines.base.System`):
    ``system.spatialize(mono, prompt, sample_rate)`` returns a ``(2, T)`` float32 array."""
    from baselines.registry import load_system as _load

    return _load(name, device=device)


def list_systems() -> pd.DataFrame:
    """Every system registration ``tas-bench ls systems`` lists, one row each, broken and
    ignored ones included: ``name``, ``status`` (ok / broken / ignored), ``reason``, then
    ``revision``, ``description`` and the other card fields (empty where the card cannot be
    read)."""
    import pandas as pd

    from baselines.registry import system_listing

    rows = [{**e["card"], "name": e["name"], "status": e["status"], "reason": e["reason"]}
            for e in system_listing()]
    df = pd.DataFrame.from_records(rows)
    first = [c for c in ("name", "status", "reason", "revision", "description") if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


@dataclass
class Predictions:
    """A predictions folder written by :func:`generate` (usable wherever a path is)."""

    path: Path
    system: str
    revision: str | None
    split: str
    clips: int
    generated: int
    skipped: int
    summary: dict[str, Any] = field(default_factory=dict)

    def __fspath__(self) -> str:
        return str(self.path)


def generate(system: str | Any, dataset: Dataset | PathLike, split: str = "test", *,
             out: PathLike, batch_size: int = 8, device: str = "cpu",
             progress: bool = False) -> Predictions:
    """Spatialize every clip of ``split`` with ``system`` (a name or a loaded system) into
    ``out/{id}.wav`` plus ``out/system.json`` (``tas-bench generate``; resumable)."""
    from tas_bench.pipeline.generate import generate_predictions

    s = generate_predictions(system, _path(dataset), out, split=split, batch_size=batch_size,
                             progress=progress, device=device)
    return Predictions(Path(out), s["system"], s["revision"], s["split"], s["clips"],
                       s["generated"], s["skipped"], s)


# ----------------------------------------------------------------------------- results

@dataclass
class Results:
    """One scoring run: ``doc`` is the content of ``results.json`` (for results not yet saved,
    without what writing adds: ``schema_version``, ``kind``, ``complete``, ``paths`` and the
    ``files`` digests), ``per_clip`` the per-clip table (``per_clip.csv``: ``id, category`` and
    one float column per per-clip metric, NaN = undefined). :attr:`metrics` is
    ``doc["metrics"]`` as a DataFrame."""

    doc: dict[str, Any]
    per_clip: pd.DataFrame
    path: Path | None = None
    #: extra files of the run (e.g. ``qa_answers.jsonl``): name -> bytes
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per metric (index: metric name; per-clip metrics in per-clip column order,
        then corpus metrics): evaluator, mean, std, ci_low, ci_high
        (the 95 % bootstrap CI; NaN for corpus metrics without one), n, higher_is_better,
        unit, per_clip (False for corpus-level metrics), description."""
        import pandas as pd

        metrics = self.doc.get("metrics") or {}
        # per-clip metrics in per_clip.csv's column order (evaluator order: signal, cues, ...),
        # then corpus metrics: the same order before and after a save (results.json sorts keys)
        order = [c for c in self.per_clip.columns if c in metrics]
        order += [k for k in metrics if k not in order]
        rows = []
        for name in order:
            m = metrics[name]
            ci = m.get("ci95") or (None, None)
            rows.append({"metric": name, "evaluator": m.get("evaluator"),
                         "mean": _float(m.get("mean")), "std": _float(m.get("std")),
                         "ci_low": _float(ci[0]), "ci_high": _float(ci[1]),
                         "n": m.get("n"), "higher_is_better": m.get("higher_is_better"),
                         "unit": m.get("unit", ""), "per_clip": m.get("per_clip"),
                         "description": m.get("description", "")})
        df = pd.DataFrame(rows, columns=["metric", *METRIC_COLUMNS]).set_index("metric")
        return df.astype({"mean": "float64", "std": "float64", "ci_low": "float64",
                          "ci_high": "float64"})

    @property
    def system(self) -> dict[str, Any]:
        """The system card the results cite (name, revision, ...)."""
        return dict(self.doc.get("system") or {})

    @property
    def dataset(self) -> dict[str, Any]:
        """The dataset the results were measured on: path, name, fingerprint, split, n_clips."""
        return dict(self.doc.get("dataset") or {})

    @property
    def invalid(self) -> list[dict[str, str]]:
        """Bad prediction files (id, path, reason); non-empty means ``tas-bench score`` exits 1."""
        return list(self.doc.get("invalid") or [])

    @property
    def warnings(self) -> list[str]:
        """Warnings of the run (length mismatches, silent predictions, small-N FD, ...)."""
        return list(self.doc.get("warnings") or [])

    @property
    def skipped(self) -> dict[str, str]:
        """Evaluators that could not run, with the reason."""
        return dict(self.doc.get("skipped") or {})

    def save(self, folder: PathLike) -> Path:
        """Write ``folder/per_clip.csv`` then ``folder/results.json`` atomically, byte for byte
        what ``tas-bench score --out folder`` writes; returns the results.json path."""
        from tas_bench.pipeline.scoring import write_run
        from tas_bench.runtime.fileio import read_json_object

        path = write_run(Path(folder), self.doc, *_frame_rows(self.per_clip), self.files, [])
        self.doc = read_json_object(path)  # now with what writing adds (schema, file digests)
        self.path = path.parent
        return path

    def __repr__(self) -> str:
        return (f"Results(system={self.system.get('name')!r}, dataset="
                f"{self.dataset.get('name')!r}/{self.dataset.get('split')!r}, "
                f"{len(self.doc.get('metrics') or {})} metrics, {len(self.per_clip)} clips)")


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def _path(x: Dataset | Predictions | PathLike) -> Path:
    return Path(os.fspath(x))


def _per_clip_frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(rows, columns=columns)
    metric_cols = [c for c in columns if c not in ("id", "category")]
    return df.astype({"id": "object", "category": "object", **dict.fromkeys(metric_cols, "float64")})


def _frame_rows(df: pd.DataFrame) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows and columns for :func:`tas_bench.runtime.results.write_per_clip` (numbers as Python
    floats, whose ``repr`` is what the CLI writes; NaN as an empty cell)."""
    columns = [str(c) for c in df.columns]
    floats = {c for c in columns if df[c].dtype.kind == "f"}
    rows = []
    for rec in df.itertuples(index=False, name=None):
        row: dict[str, Any] = {}
        for c, v in zip(columns, rec):
            if c in floats:
                row[c] = float(v)
            elif v is None or (isinstance(v, float) and math.isnan(v)):
                row[c] = None
            else:
                row[c] = v
        rows.append(row)
    return rows, columns


def score(dataset: Dataset | PathLike, predictions: Predictions | PathLike,
          evaluators: Sequence[str] | None = None, out: PathLike | None = None, *,
          options: Mapping[str, Mapping[str, Any]] | Iterable[str] | None = None,
          split: str | None = "test", system_name: str | None = None,
          cache_dir: PathLike | None = None, use_cache: bool = True,
          save_embeddings: bool = False, progress: bool = False) -> Results:
    """Score ``predictions`` (a folder of ``{id}.wav``) against ``dataset`` with
    ``evaluators`` (default: every registered one that can run), as ``tas-bench score`` does.

    ``options``: evaluator options, ``{"signal": {"normalize": False}}`` or the CLI's
    ``["signal.normalize=false"]``. ``split=None`` scores every clip (the CLI's ``--split all``).
    With ``out`` the results are also written there (same bytes as the CLI). Bad prediction
    files do not raise: they are listed in :attr:`Results.invalid`.
    """
    from tas_bench.pipeline.scoring import ScoreOptions, compute_scores, parse_evaluator_options

    if options is None:
        config: dict[str, dict[str, Any]] = {}
    elif isinstance(options, Mapping):
        config = {str(k): dict(v) for k, v in options.items()}
    else:
        config = parse_evaluator_options(options)
    if split == "all":
        split = None
    opts = ScoreOptions(
        data=_path(dataset), pred=_path(predictions), out=None if out is None else Path(out),
        evaluators=None if evaluators is None else list(evaluators), evaluator_config=config,
        split=split, system_name=system_name,
        cache_dir=None if cache_dir is None else Path(cache_dir), use_cache=use_cache,
        save_embeddings=save_embeddings, progress=progress)
    run = compute_scores(opts)
    assert run.results is not None  # only a shard run has none
    res = Results(run.results, _per_clip_frame(run.rows, run.columns), files=dict(run.files))
    if out is not None:
        from tas_bench.pipeline.scoring import write_run
        from tas_bench.runtime.fileio import read_json_object

        path = write_run(Path(out), run.results, run.rows, run.columns, run.files, run.saved)
        res.doc, res.path = read_json_object(path), path.parent
    return res


def load_results(folder: PathLike) -> Results:
    """Read a results folder written by ``tas-bench score`` (or :meth:`Results.save`); a
    missing, incomplete or unknown-schema results.json raises :class:`TasBenchError`."""
    import csv

    from tas_bench.runtime.results import PER_CLIP_NAME, read_results

    folder = Path(folder)
    doc = read_results(folder)
    name = (doc.get("paths") or {}).get("per_clip", PER_CLIP_NAME)
    path = folder / str(name)
    if not path.is_file():
        raise TasBenchError("missing per_clip.csv", path=folder)
    # the csv module rather than pandas.read_csv: every cell is read as written (ids stay
    # strings, "" is undefined), and float(repr(x)) == x, so save() gives the same bytes back
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        columns = next(reader, None)
        if not columns:
            raise TasBenchError("empty per_clip.csv (no header)", path=path)
        rows = []
        for lineno, cells in enumerate(reader, start=2):
            if len(cells) != len(columns):
                raise TasBenchError(f"line {lineno}: {len(cells)} cells, header has {len(columns)}",
                                    path=path)
            row: dict[str, Any] = {}
            for c, v in zip(columns, cells):
                if c in ("id", "category"):
                    row[c] = v
                else:
                    try:
                        row[c] = float(v) if v != "" else math.nan
                    except ValueError:
                        raise TasBenchError(f"line {lineno}: {v!r} is not a number",
                                            path=path, field=c) from None
            rows.append(row)
    extra = {}
    for fname in doc.get("files") or {}:  # extra files of the run (verified by read_results)
        f = folder / str(fname)
        if fname != PER_CLIP_NAME and not str(fname).startswith("embeddings/") and f.is_file():
            extra[fname] = f.read_bytes()
    return Results(doc, _per_clip_frame(rows, columns), folder, extra)


# ----------------------------------------------------------------------------- leaderboard

def leaderboard(results_dir: PathLike, *, include_published: bool = True,
                bootstrap: int | None = None, seed: int | None = None,
                alpha: float | None = None) -> dict[str, pd.DataFrame]:
    """The leaderboard tables of every results folder under ``results_dir`` as DataFrames:
    ``table2``, ``table3``, ``table4`` and ``extended`` (the tables ``tas-bench leaderboard``
    writes, one row per system and block). ``source`` tells ``published`` (the paper's rows)
    from ``measured`` ones; metric columns hold numbers (NaN for "—"), the extended table adds
    ``<col> ci95_low/ci95_high/significant/p_next``. Results folders with problems are left out
    (as the CLI does; the CLI prints them as warnings).
    """
    from leaderboard.build import table_frames
    from leaderboard.significance import (
        DEFAULT_ALPHA,
        DEFAULT_BOOTSTRAP,
        DEFAULT_SEED,
        BootstrapConfig,
    )

    boot = BootstrapConfig(DEFAULT_BOOTSTRAP if bootstrap is None else bootstrap,
                           DEFAULT_SEED if seed is None else seed,
                           DEFAULT_ALPHA if alpha is None else alpha)
    if boot.n_boot < 1:  # the checks (and messages) of `tas-bench leaderboard`
        raise TasBenchError("must be at least 1", field="--bootstrap")
    if not 0.0 < boot.alpha < 1.0:
        raise TasBenchError("must be between 0 and 1", field="--alpha")
    return table_frames(Path(results_dir), include_published=include_published, bootstrap=boot)
