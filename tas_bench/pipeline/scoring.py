"""The scoring runner behind ``tas-bench score``.

dataset + predictions folder -> evaluators -> ``RES/results.json`` + ``RES/per_clip.csv``.

Audio policy (recorded in every results file):
- predictions and references are resampled to each evaluator's rate with :data:`RESAMPLER`;
- the prediction is cropped or zero-padded at the end to the reference length
  (:data:`LENGTH_POLICY`); a mismatch above 1 % of the reference length is listed in warnings.

Outputs per (clip, evaluator) are cached by content (:mod:`tas_bench.runtime.cache`), so a rerun
recomputes nothing and a changed file is recomputed. Sharding: ``--shard I/N`` (or running under
``accelerate launch``) computes a disjoint subset of clips into the cache; the final pass reads
every clip's output from the cache in manifest order, so sharded and unsharded runs give
identical files.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.base import ClipInput, ClipOutput, Evaluator
from evaluators.registry import EVALUATORS
from tas_bench.data.manifest import Clip, Dataset, dataset_fingerprint, load_dataset
from tas_bench.runtime.audio_io import (
    RESAMPLER,
    check_output_folder,
    read_audio,
    require_regular_file,
)
from tas_bench.runtime.cache import OutputCache, default_cache_dir
from tas_bench.runtime.errors import AudioError, TasBenchError
from tas_bench.runtime.fileio import (
    atomic_path,
    read_json_object,
    sha256_bytes,
    sha256_file,
    stable_hash,
    sweep_orphans,
    write_bytes_atomic,
)
from tas_bench.runtime.provenance import code_info, package_versions
from tas_bench.runtime.results import (
    PER_CLIP_NAME,
    RESULTS_NAME,
    clear_stale_results,
    write_results,
)
from tas_bench.runtime.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, summarize

LENGTH_POLICY = "prediction cropped or zero-padded at the end to the reference length"
SYSTEM_CARD_NAME = "system.json"


@dataclass
class ScoreOptions:
    """What to score and how. ``evaluators=None`` means every registered evaluator that can run."""

    data: Path
    pred: Path
    out: Path | None
    evaluators: list[str] | None = None
    evaluator_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    split: str | None = "test"
    system_name: str | None = None
    cache_dir: Path | None = None
    use_cache: bool = True
    save_embeddings: bool = False
    progress: bool = True
    shard: tuple[int, int] | None = None


@dataclass
class ScoreSummary:
    """What a scoring run produced."""

    results_path: Path | None
    n_clips: int
    n_valid: int
    invalid: list[dict[str, str]]
    metrics: dict[str, dict[str, Any]]
    skipped: dict[str, str]
    cache_hits: int
    cache_misses: int
    seconds: float


@dataclass
class _Item:
    clip: Clip
    ref_path: Path
    pred_path: Path
    ref_sha: str
    pred_sha: str


def parse_evaluator_options(pairs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Parse ``EVALUATOR.KEY=VALUE`` strings (VALUE as JSON when it parses, else a string)."""
    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        name, dot, opt = key.partition(".")
        if not sep or not dot or not name or not opt:
            raise TasBenchError(f"--set expects EVALUATOR.KEY=VALUE, got {pair!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(name, {})[opt] = value
    return out


def _instantiate(names: list[str] | None, config: dict[str, dict[str, Any]],
                 dataset: Dataset) -> tuple[list[Evaluator], dict[str, str]]:
    explicit = names is not None
    chosen = names if names is not None else EVALUATORS.names()
    for name in config:
        if name not in chosen:
            raise TasBenchError(f"options given for evaluator {name!r}, which is not selected")
    evaluators: list[Evaluator] = []
    skipped: dict[str, str] = {}
    for name in chosen:
        cls = EVALUATORS.get(name)
        ev = cls(**config.get(name, {}))
        reason = ev.check_requirements(dataset)
        if reason:
            if explicit:
                raise TasBenchError(f"evaluator {name!r} cannot run: {reason}")
            skipped[name] = reason
            continue
        evaluators.append(ev)
    if not evaluators:
        raise TasBenchError("no evaluator can run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    return evaluators, skipped


def _scan_predictions(pred: Path, clips: list[Clip], all_ids: set[str]
                      ) -> tuple[dict[str, Path], list[dict[str, str]], list[str]]:
    """Map clip id -> prediction path; list bad entries (invalid) and ignored ones (warnings)."""
    if not pred.is_dir():
        raise TasBenchError("predictions folder not found", path=pred)
    wanted = {c.id for c in clips}
    found: dict[str, Path] = {}
    invalid: list[dict[str, str]] = []
    warnings: list[str] = []
    root = pred.resolve()
    candidates: dict[str, list[Path]] = {}
    for entry in sorted(os.scandir(pred), key=lambda e: e.name):
        p = Path(entry.path)
        if entry.name == SYSTEM_CARD_NAME:
            continue
        if entry.is_symlink():
            invalid.append({"id": p.stem, "path": str(p), "reason": "symbolic link: predictions must be regular files inside the folder"})
            continue
        if not entry.is_file():
            invalid.append({"id": p.stem, "path": str(p), "reason": "not a regular file"})
            continue
        if p.suffix.lower() != ".wav":
            invalid.append({"id": p.stem, "path": str(p), "reason": "extra file: not a .wav prediction"})
            continue
        if p.resolve().parent != root:
            invalid.append({"id": p.stem, "path": str(p), "reason": "path escapes the predictions folder"})
            continue
        if p.stem in wanted:
            candidates.setdefault(p.stem, []).append(p)
        elif p.stem in all_ids:
            warnings.append(f"{p.name}: clip is not in the scored split (ignored)")
        else:
            invalid.append({"id": p.stem, "path": str(p), "reason": "extra file: no clip with this id in the manifest"})
    ambiguous = set()
    for cid, paths in candidates.items():
        if len(paths) == 1:
            found[cid] = paths[0]
        else:  # x.wav beside x.WAV: neither is taken, since either could be the intended one
            ambiguous.add(cid)
            names = ", ".join(q.name for q in paths)
            invalid.append({"id": cid, "path": str(paths[0]),
                            "reason": f"ambiguous: {len(paths)} files name this clip ({names}); "
                                      "keep exactly one"})
    for c in clips:
        if c.id not in found and c.id not in ambiguous:
            invalid.append({"id": c.id, "path": str(pred / f"{c.id}.wav"), "reason": "prediction missing"})
    return found, invalid, warnings


def _read_system_card(pred: Path, name: str | None) -> dict[str, Any]:
    """The system card from ``PRED/system.json`` (the card itself, or the file `generate`
    writes: {"system": card, "dataset_fingerprint": ..., ...}); ``name`` overrides its name."""
    path = pred / SYSTEM_CARD_NAME
    card: dict[str, Any] = {}
    if path.exists() or path.is_symlink():
        require_regular_file(path, "system card", error=TasBenchError)
        card = read_json_object(path)
        if isinstance(card.get("system"), dict):  # written by `tas-bench generate`
            generated = {k: v for k, v in card.items() if k != "system"}
            card = {**card["system"], "generated": generated}
    if name:
        card = {**card, "name": name}
    card.setdefault("name", pred.resolve().name)
    card.setdefault("revision", None)
    return card


def _match_length(pred: np.ndarray, n: int) -> np.ndarray:
    if pred.shape[1] == n:
        return pred
    if pred.shape[1] > n:
        return pred[:, :n]
    return np.pad(pred, ((0, 0), (0, n - pred.shape[1])))


class _Scorer:
    def __init__(self, evaluators: list[Evaluator], cache: OutputCache, out_embed: Path | None) -> None:
        self.evaluators = evaluators
        self.cache = cache
        self.out_embed = out_embed
        self.saved: list[str] = []
        self.clip_keys: dict[str, dict[str, str]] = {ev.name: {} for ev in evaluators}
        self.meta = {
            ev.name: {
                "name": ev.name, "version": ev.version, "config_hash": stable_hash(ev.config()),
                "weights": {k: v.get("sha256") for k, v in ev.weights_info().items()},
                "resampler": RESAMPLER, "length_policy": LENGTH_POLICY,
                "sample_rate": ev.sample_rate,  # what the evaluator is fed, whatever config() says
            } for ev in evaluators
        }

    def key(self, ev: Evaluator, item: _Item) -> str:
        parts: dict[str, Any] = {**self.meta[ev.name], "pred": item.pred_sha, "ref": item.ref_sha}
        for fld in ev.needs:
            value = getattr(item.clip, fld, None)
            parts[f"clip.{fld}"] = json.loads(json.dumps(value, default=lambda o: o.__dict__))
        parts["clip.id"] = item.clip.id if ev.needs else None
        return self.cache.key(parts)

    def outputs(self, items: list[_Item]) -> tuple[dict[str, list[ClipOutput]], list[dict[str, str]], list[str]]:
        """Per evaluator, the outputs for ``items`` (in order), from the cache or computed."""
        result: dict[str, list[ClipOutput | None]] = {ev.name: [None] * len(items) for ev in self.evaluators}
        bad: list[dict[str, str]] = []
        notes: list[str] = []
        todo: dict[str, list[int]] = {}
        keys: dict[tuple[str, int], str] = {}
        for ev in self.evaluators:
            for i, item in enumerate(items):
                k = self.key(ev, item)
                keys[(ev.name, i)] = k
                self.clip_keys[ev.name][item.clip.id] = k
                hit = self.cache.get(k)
                if hit is None:
                    todo.setdefault(ev.name, []).append(i)
                else:
                    result[ev.name][i] = hit
        loaded: dict[tuple[int, int], tuple[np.ndarray, np.ndarray] | None] = {}
        broken: set[int] = set()
        for ev in self.evaluators:
            idx = todo.get(ev.name, [])
            inputs, where = [], []
            for i in idx:
                if i in broken:
                    continue
                pair = loaded.get((i, ev.sample_rate))
                if pair is None and (i, ev.sample_rate) not in loaded:
                    pair = self._load(items[i], ev.sample_rate, bad, notes)
                    loaded[(i, ev.sample_rate)] = pair
                if pair is None:
                    broken.add(i)
                    continue
                inputs.append(ClipInput(items[i].clip, pair[0], pair[1], ev.sample_rate))
                where.append(i)
            for start in range(0, len(inputs), max(1, ev.batch_size)):
                chunk = inputs[start:start + ev.batch_size]
                outs = ev.process_batch(chunk)
                for out, i in zip(outs, where[start:start + ev.batch_size]):
                    self.cache.put(keys[(ev.name, i)], out)
                    result[ev.name][i] = out
        if self.out_embed is not None:
            for ev in self.evaluators:
                for i, out in enumerate(result[ev.name]):
                    if out is not None and out.arrays:
                        d = self.out_embed / ev.name
                        d.mkdir(parents=True, exist_ok=True)
                        with atomic_path(d / f"{items[i].clip.id}.npz") as tmp:
                            np.savez(tmp, **out.arrays)
                        self.saved.append(f"embeddings/{ev.name}/{items[i].clip.id}.npz")
        return result, bad, notes  # type: ignore[return-value]

    @staticmethod
    def _load(item: _Item, sr: int, bad: list[dict[str, str]], notes: list[str]
              ) -> tuple[np.ndarray, np.ndarray] | None:
        try:
            ref = read_audio(item.ref_path, channels=2, sample_rate=sr, dtype="float64")
        except AudioError as exc:
            raise TasBenchError(f"reference audio of clip {item.clip.id}: {exc}") from None
        try:
            pred = read_audio(item.pred_path, channels=2, sample_rate=sr, dtype="float64")
        except AudioError as exc:
            bad.append({"id": item.clip.id, "path": str(item.pred_path), "reason": exc.reason})
            return None
        n = ref.samples.shape[1]
        if abs(pred.samples.shape[1] - n) > 0.01 * n:
            notes.append(f"{item.clip.id}: prediction length {pred.samples.shape[1] / sr:.3f} s vs reference "
                         f"{n / sr:.3f} s ({LENGTH_POLICY})")
        if not np.any(pred.samples):
            notes.append(f"{item.clip.id}: prediction is all-silent")
        return _match_length(pred.samples, n), ref.samples


def _corpus_metrics(ev: Evaluator, clips: list[Clip], outs: dict[str, ClipOutput], scorer: _Scorer,
                    cache: OutputCache) -> dict[str, Any]:
    """``ev.compute`` over the clips' outputs in manifest order, cached under a key made of the
    evaluator's identity and every clip's output key (some corpus metrics - FD's matrix square
    root cross-check - cost more than reading the per-clip outputs)."""
    key = cache.key({**scorer.meta[ev.name], "corpus": [[c.id, scorer.clip_keys[ev.name][c.id]] for c in clips]})
    hit = cache.get(key)
    if hit is not None and "corpus_json" in hit.arrays:
        return json.loads(hit.arrays["corpus_json"].tobytes().decode("utf-8"))
    state = ev.init_state()
    for c in clips:
        ev.update_state(state, c.id, outs[c.id])
    corpus = ev.compute(state)
    blob = json.dumps(corpus, default=float, allow_nan=True).encode("utf-8")
    cache.put(key, ClipOutput(arrays={"corpus_json": np.frombuffer(blob, dtype=np.uint8)}))
    return json.loads(blob.decode("utf-8"))


@dataclass
class ScoredRun:
    """A scoring run computed in memory and not yet written: ``results`` is what
    :func:`tas_bench.runtime.results.write_results` turns into ``results.json`` (None for a shard run),
    ``rows``/``columns`` the per-clip table, ``summary`` the run summary (no results path)."""

    summary: ScoreSummary
    results: dict[str, Any] | None
    rows: list[dict[str, Any]]
    columns: list[str]
    #: extra result files from the evaluators (``Evaluator.result_files``): name -> bytes
    files: dict[str, bytes] = field(default_factory=dict)
    #: embedding files this run saved under ``out`` (relative names)
    saved: list[str] = field(default_factory=list)


def _check_references(dataset: Dataset, clips: list[Clip]) -> None:
    """Every scored clip's reference audio must be a regular file, checked with ``stat`` before
    anything hashes or reads it (a FIFO would block the run forever). A missing or unusable
    reference is an error of the whole run, not an invalid entry: a result over fewer
    references would not be comparable with other results on the same dataset."""
    problems = []
    for c in clips:
        try:
            require_regular_file(dataset.audio_path(c), f"reference audio of clip {c.id}")
        except TasBenchError as exc:
            problems.append(str(exc))
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise TasBenchError(f"{len(problems)} unusable reference file(s): "
                            + "; ".join(problems[:5]) + more, path=dataset.root)


def _sweep(cache_dir: Path | None, pred: Path, out: Path | None) -> None:
    """Remove temporary files that killed writers left (cache entries, predictions written by
    ``generate``, results), so an interrupted run costs nothing but the lost work and its
    leftovers are never read as predictions."""
    if cache_dir is not None:
        sweep_orphans(cache_dir, recursive=True)
    sweep_orphans(pred)
    if out is not None:  # not recursive: --out may be a big folder; embeddings/ is ours
        sweep_orphans(out)
        sweep_orphans(out / "embeddings", recursive=True)


def score(opts: ScoreOptions) -> ScoreSummary:
    """Score the predictions in ``opts.pred`` against ``opts.data``; write results to ``opts.out``.

    Returns a summary; bad prediction files are listed in ``invalid`` (the CLI then exits 1).
    With ``opts.shard`` set, only that shard's clips are computed into the cache and nothing
    is written; with ``opts.out`` None the results are computed and nothing is written.
    """
    run = compute_scores(opts)
    if run.results is None or opts.out is None:
        return run.summary
    path = write_run(opts.out, run.results, run.rows, run.columns, run.files, run.saved)
    return replace(run.summary, results_path=path)


def write_run(out: Path, results: dict[str, Any], rows: list[dict[str, Any]], columns: list[str],
              files: dict[str, bytes], saved: list[str]) -> Path:
    """Write a scored run into ``out`` (the CLI's and the Python API's one writer): the
    evaluators' extra files, ``per_clip.csv``, then ``results.json`` whose ``files`` map lists
    those, ``per_clip.csv`` and the embeddings this run ``saved`` (relative names)."""
    clear_stale_results(out)
    for name, data in files.items():
        write_bytes_atomic(out / name, data)
    return write_results(out, results, rows, columns, files=[*files, *saved])


def compute_scores(opts: ScoreOptions) -> ScoredRun:
    """Everything :func:`score` does except writing ``results.json`` / ``per_clip.csv``
    (embeddings are still saved under ``opts.out`` when ``opts.save_embeddings``)."""
    t0 = time.perf_counter()
    writes = opts.out is not None and opts.shard is None
    if writes:
        check_output_folder(opts.out, inputs=(opts.pred, opts.data),
                            file_names=(RESULTS_NAME, PER_CLIP_NAME))
        emb = opts.out / "embeddings"
        if emb.exists() and (emb.is_symlink() or not emb.is_dir()):
            raise TasBenchError("--out: embeddings exists and is not a folder", path=emb)
    dataset = load_dataset(opts.data)
    clips = dataset.split(opts.split)
    if not clips:
        raise TasBenchError(f"no clips in split {opts.split!r}", path=dataset.root)
    _check_references(dataset, clips)
    cache_dir = (opts.cache_dir or default_cache_dir()) if opts.use_cache else None
    _sweep(cache_dir, opts.pred, opts.out if writes else None)
    evaluators, skipped = _instantiate(opts.evaluators, opts.evaluator_config, dataset)
    found, invalid, warnings = _scan_predictions(opts.pred, clips, {c.id for c in dataset.clips})
    cache = OutputCache(cache_dir)
    for ev in evaluators:
        ev.aux_cache = cache
    embed_dir = (opts.out / "embeddings") if (opts.save_embeddings and opts.out and not opts.shard) else None
    if embed_dir is not None:
        # the folder is about to change: it must not read as the previous run meanwhile, and
        # embeddings an earlier run left must not be listed as this run's
        clear_stale_results(opts.out)
        for ev in evaluators:
            shutil.rmtree(embed_dir / ev.name, ignore_errors=True)
    scorer = _Scorer(evaluators, cache, embed_dir)

    if opts.shard is not None:
        index, count = opts.shard
        if not opts.use_cache:
            raise TasBenchError("--shard needs the cache (it is how shards hand results over)")
        clips = [c for j, c in enumerate(clips) if j % count == index]
    items_all = [c for c in clips if c.id in found]

    from tqdm import tqdm

    per_ev: dict[str, dict[str, ClipOutput]] = {ev.name: {} for ev in evaluators}
    bar = tqdm(total=len(items_all), desc="scoring", unit="clip", disable=not opts.progress)
    batch = max(ev.batch_size for ev in evaluators)
    pred_sha: dict[str, str] = {}
    for start in range(0, len(items_all), batch):
        chunk = items_all[start:start + batch]
        items = [_Item(c, dataset.audio_path(c), found[c.id], sha256_file(dataset.audio_path(c)),
                       sha256_file(found[c.id])) for c in chunk]
        pred_sha.update((it.clip.id, it.pred_sha) for it in items)
        outs, bad, notes = scorer.outputs(items)
        invalid.extend(bad)
        warnings.extend(notes)
        for ev in evaluators:
            for item, out in zip(items, outs[ev.name]):
                if out is not None:
                    per_ev[ev.name][item.clip.id] = out
        bar.update(len(chunk))
    bar.close()
    bad_ids = {b["id"] for b in invalid}
    valid = [c for c in items_all if c.id not in bad_ids]

    if opts.shard is not None:
        return ScoredRun(ScoreSummary(None, len(clips), len(valid), invalid, {}, skipped, cache.hits,
                                      cache.misses, time.perf_counter() - t0), None, [], [])

    metrics: dict[str, dict[str, Any]] = {}
    columns = ["id", "category"]
    rows = [{"id": c.id, "category": c.category} for c in valid]
    ev_info: dict[str, Any] = {}
    for ev in evaluators:
        outs = per_ev[ev.name]
        ev_info[ev.name] = {"version": ev.version, "config": ev.config(),
                            "config_hash": stable_hash(ev.config()), "weights": ev.weights_info()}
        for spec in ev.per_clip_metrics():
            values = np.array([outs[c.id].values.get(spec.name, np.nan) for c in valid], dtype=np.float64)
            for row, v in zip(rows, values):
                row[spec.name] = float(v)
            columns.append(spec.name)
            metrics[spec.name] = {"evaluator": ev.name, **summarize(values),
                                  "higher_is_better": spec.higher_is_better, "unit": spec.unit,
                                  "per_clip": True, "description": spec.description}
        if ev.corpus_metrics():
            corpus = _corpus_metrics(ev, valid, outs, scorer, cache)
            for w in corpus.get("warnings", []):
                warnings.append(f"{ev.name}: {w}")
            for spec in ev.corpus_metrics():
                value = corpus.get(spec.name)
                entry = {"evaluator": ev.name, "mean": value, "std": corpus.get(f"{spec.name}_std"),
                         "ci95": None, "n": len(valid), "higher_is_better": spec.higher_is_better,
                         "unit": spec.unit, "per_clip": False, "description": spec.description}
                metrics[spec.name] = entry

    pred_fp = sha256_bytes("\n".join(f"{c.id}:{pred_sha[c.id]}" for c in valid).encode())
    results = {
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "code": code_info(),
        "system": _read_system_card(opts.pred, opts.system_name),
        "dataset": {"path": str(dataset.root), "name": dataset.info.get("name", dataset.root.name),
                    "fingerprint": dataset_fingerprint(dataset.root, dataset.clips),
                    "split": opts.split, "n_clips": len(clips)},
        "predictions": {"path": str(opts.pred.resolve()), "n_files": len(found), "n_valid": len(valid),
                        "fingerprint": pred_fp},
        "audio_policy": {"resampler": RESAMPLER, "length_policy": LENGTH_POLICY},
        "evaluators": ev_info,
        "skipped": skipped,
        "metrics": metrics,
        "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "interval": "percentile 95 %"},
        "invalid": invalid,
        "warnings": warnings,
        "packages": package_versions(),
    }
    files: dict[str, bytes] = {}
    for ev in evaluators:
        for name, data in ev.result_files({c.id: per_ev[ev.name][c.id] for c in valid}).items():
            if name in files or name in (RESULTS_NAME, PER_CLIP_NAME):
                raise TasBenchError(f"evaluator {ev.name!r} writes {name!r}, which another part "
                                    "of the results already uses")
            files[name] = data
    return ScoredRun(ScoreSummary(None, len(clips), len(valid), invalid, metrics, skipped, cache.hits,
                                  cache.misses, time.perf_counter() - t0), results, rows, columns,
                     files, list(scorer.saved))

