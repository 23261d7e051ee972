"""The results contract: ``RES/results.json`` and ``RES/per_clip.csv``.

``results.json`` (schema :data:`SCHEMA_VERSION`) holds: ``kind`` ("tas-bench-results"),
``complete`` (true once everything is written), ``created_utc``, ``code`` (tas-bench version,
git commit, dirty flag), ``system`` (card: name, revision, ...), ``dataset`` (path, name,
fingerprint, split, n_clips), ``predictions`` (path, n_files, fingerprint), ``audio_policy``
(resampler, length policy), ``evaluators`` (name -> version, config, config_hash, weights),
``skipped`` (name -> reason), ``metrics`` (name -> evaluator, mean, std, ci95, n,
higher_is_better, unit, per_clip, plus extra corpus statistics), ``bootstrap`` (resamples,
seed), ``invalid`` (id, path, reason per bad prediction file), ``warnings``, ``packages``.

``per_clip.csv``: ``id, category`` and one column per per-clip metric (empty = undefined).
Both are written atomically, ``per_clip.csv`` first and ``results.json`` last, so a folder
whose results.json has ``complete: true`` is a finished result.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from tas_bench.errors import TasBenchError
from tas_bench.fileio import read_json_object, write_json_atomic, write_text_atomic

SCHEMA_VERSION = "1.0"
RESULTS_NAME = "results.json"
PER_CLIP_NAME = "per_clip.csv"


def _clean(obj: Any) -> Any:
    """Replace non-finite floats by None so the JSON is strict."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_per_clip(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Write per-clip rows as CSV (non-finite values as empty cells), atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        out = []
        for c in columns:
            v = row.get(c)
            if isinstance(v, float):
                out.append("" if not math.isfinite(v) else repr(v))
            else:
                out.append("" if v is None else str(v))
        w.writerow(out)
    write_text_atomic(path, buf.getvalue())


def results_document(results: dict[str, Any]) -> dict[str, Any]:
    """The JSON object ``results.json`` holds for ``results``: schema fields added, non-finite
    floats as null (idempotent: a document read back gives itself)."""
    return _clean({**results, "schema_version": SCHEMA_VERSION, "kind": "tas-bench-results",
                   "complete": True, "paths": {"per_clip": PER_CLIP_NAME}})


def write_results(folder: Path, results: dict[str, Any], rows: list[dict[str, Any]],
                  columns: list[str]) -> Path:
    """Write ``per_clip.csv`` then ``results.json`` (with ``complete: true``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_per_clip(folder / PER_CLIP_NAME, rows, columns)
    write_json_atomic(folder / RESULTS_NAME, results_document(results))
    return folder / RESULTS_NAME


def read_results(folder: Path) -> dict[str, Any]:
    """Read and check a results folder; raises :class:`TasBenchError` naming the problem."""
    path = Path(folder) / RESULTS_NAME
    if not path.is_file():
        raise TasBenchError("missing results.json", path=folder)
    doc = read_json_object(path)
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise TasBenchError(f"unknown schema_version {doc.get('schema_version')!r} "
                            f"(this tas-bench reads {SCHEMA_VERSION})", path=path, field="schema_version")
    if doc.get("complete") is not True:
        raise TasBenchError("results are incomplete (complete != true)", path=path, field="complete")
    return doc
