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

A results folder is all of one run. Schema 1.1 adds ``files``: relative name -> sha256 of every
file of the folder (``per_clip.csv``, ``embeddings/EVALUATOR/{id}.npz``, ...; see
:func:`folder_files`), and :func:`check_results_files` (used by :func:`read_results` and the
leaderboard) compares the folder with it: a listed file whose bytes differ, or a
``per_clip.csv`` that is not listed, means the folder mixes runs (an error); a listed file that is
gone or a file that is not listed is a warning. Writing removes a stale ``results.json`` first,
then writes ``per_clip.csv``, then ``results.json`` (each atomically), so a run killed in between
leaves a folder without ``results.json`` (left out by the leaderboard), never an old
``results.json`` beside a new ``per_clip.csv``. Schema 1.0 files (no ``files`` map) are still
read, with a warning that their folder cannot be checked.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import (
    read_json_object,
    sha256_file,
    sweep_orphans,
    write_json_atomic,
    write_text_atomic,
)

SCHEMA_VERSION = "1.1"
#: Schema versions :func:`read_results` and the leaderboard read (1.0: no ``files`` map).
READABLE_SCHEMAS = ("1.0", "1.1")
RESULTS_NAME = "results.json"
PER_CLIP_NAME = "per_clip.csv"

_SHA256 = re.compile(r"[0-9a-f]{64}")


class ResultsWarning(UserWarning):
    """A results folder that can be read but not fully checked (e.g. schema 1.0, extra files)."""


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


def folder_files(folder: Path) -> list[str]:
    """The files that make up the results in ``folder``, as sorted relative POSIX names: every
    regular file below it except ``results.json``, hidden entries (temporary files of atomic
    writes, ``.git``), symbolic links (never followed) and sub-folders that hold their own
    ``results.json`` (a nested results folder is its own run)."""
    folder = Path(folder)
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and not (here / d).is_symlink() and not (here / d / RESULTS_NAME).exists())
        for f in filenames:
            p = here / f
            if f.startswith(".") or p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(folder).as_posix()
            if rel != RESULTS_NAME:
                names.append(rel)
    return sorted(names)


def clear_stale_results(folder: Path) -> None:
    """Make ``folder`` ready to receive a new run: create it, sweep temporary files of killed
    writers and remove an old ``results.json``, so that until the new one is written the folder
    reads as unfinished rather than as the previous run. A file in place of the folder, or a
    non-file named ``results.json`` in it, is a :class:`TasBenchError`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TasBenchError("results folder is a file, not a folder", path=folder)
    folder.mkdir(parents=True, exist_ok=True)
    sweep_orphans(folder)  # not recursive: the scoring run sweeps embeddings/ itself
    old = folder / RESULTS_NAME
    if old.is_symlink() or old.is_file():
        old.unlink()
    elif old.exists():
        raise TasBenchError("is not a regular file; remove it", path=old)


def write_results(folder: Path, results: dict[str, Any], rows: list[dict[str, Any]],
                  columns: list[str], files: list[str] | None = None) -> Path:
    """Write a run into ``folder``: remove a stale ``results.json``, write ``per_clip.csv``, then
    ``results.json`` (``complete: true``, and ``files``: the sha256 of ``per_clip.csv`` and of
    the other files of the run, given as relative names in ``files``; by default every file of
    the folder, :func:`folder_files`, e.g. the embeddings this run saved before this call)."""
    folder = Path(folder)
    clear_stale_results(folder)
    write_per_clip(folder / PER_CLIP_NAME, rows, columns)
    names = folder_files(folder) if files is None else sorted({PER_CLIP_NAME, *files})
    for name in names:
        if _bad_name(name):
            raise ValueError(f"write_results: {name!r} is not a relative path inside the folder")
    digests = {name: sha256_file(folder / name) for name in names}
    doc = _clean({**results, "schema_version": SCHEMA_VERSION, "kind": "tas-bench-results",
                  "complete": True, "paths": {"per_clip": PER_CLIP_NAME}, "files": digests})
    write_json_atomic(folder / RESULTS_NAME, doc)
    return folder / RESULTS_NAME


def _bad_name(name: Any) -> bool:
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        return True
    p = PurePosixPath(name)
    return p.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")) \
        or name == RESULTS_NAME


def check_results_files(folder: Path, doc: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Compare the files in results ``folder`` with the ``files`` map of its ``results.json``
    (``doc``). Returns ``(errors, warnings)``, each a list of (relative name, reason).

    Errors (the folder is not all of one run): a malformed ``files`` map or name, a listed file
    whose sha256 differs or that is not a regular file, a ``per_clip.csv`` that is not listed,
    a schema-1.1 document without the map. Warnings: a schema-1.0 document (no map to check
    against), a listed file that is gone, files in the folder that are not listed.
    """
    folder = Path(folder)
    errors: list[tuple[str, str]] = []
    warns: list[tuple[str, str]] = []
    files = doc.get("files")
    if files is None:
        if doc.get("schema_version") == "1.0":
            warns.append((RESULTS_NAME, "schema 1.0 results.json records no file digests, so "
                          "per_clip.csv cannot be checked against it (rescore to get the check)"))
        else:
            errors.append((RESULTS_NAME, "no 'files' map (the sha256 of per_clip.csv and the "
                           "other files of the run)"))
        return errors, warns
    if not isinstance(files, dict):
        errors.append((RESULTS_NAME, "'files' must be an object: file name -> sha256"))
        return errors, warns
    for name, sha in sorted(files.items(), key=lambda kv: str(kv[0])):
        if _bad_name(name):
            errors.append((RESULTS_NAME, f"files: {name!r} is not a relative path inside the folder"))
            continue
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            errors.append((RESULTS_NAME, f"files.{name}: expected a hex sha256, got {sha!r}"))
            continue
        p = folder / name
        if p.is_symlink() or (p.exists() and not p.is_file()):
            errors.append((name, "not a regular file, but results.json lists it as a file of the run"))
            continue
        if not p.exists():
            warns.append((name, "listed in results.json but missing"))
            continue
        try:
            actual = sha256_file(p)
        except OSError as exc:
            errors.append((name, f"cannot be read ({exc.strerror or exc})"))
            continue
        if actual != sha:
            errors.append((name, f"sha256 {actual[:12]}... differs from the {sha[:12]}... recorded "
                           "in results.json: the folder mixes files of different runs (or the file "
                           "was edited)"))
    present = folder_files(folder)
    if PER_CLIP_NAME in present and PER_CLIP_NAME not in files:
        errors.append((PER_CLIP_NAME, "not listed in results.json files: it is not from the run "
                       "that wrote results.json"))
    extra = [n for n in present if n not in files and n != PER_CLIP_NAME]
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        warns.append((extra[0] if len(extra) == 1 else "", f"not written by the run of "
                      f"results.json (not in its files map): {shown}"))
    return errors, warns


def read_results(folder: Path, *, check_files: bool = True) -> dict[str, Any]:
    """Read and check a results folder; raises :class:`TasBenchError` naming the problem.

    With ``check_files`` the folder is compared with the ``files`` map
    (:func:`check_results_files`): an error raises, a warning is issued as
    :class:`ResultsWarning`.
    """
    folder = Path(folder)
    path = folder / RESULTS_NAME
    if not path.is_file():
        raise TasBenchError("missing results.json", path=folder)
    doc = read_json_object(path)
    sv = doc.get("schema_version")
    if sv not in READABLE_SCHEMAS:
        raise TasBenchError(f"unknown schema_version {sv!r} (this tas-bench reads "
                            f"{', '.join(READABLE_SCHEMAS)})", path=path, field="schema_version")
    if doc.get("complete") is not True:
        raise TasBenchError("results are incomplete (complete != true)", path=path, field="complete")
    if check_files:
        errors, warns = check_results_files(folder, doc)
        if errors:
            name, reason = errors[0]
            raise TasBenchError(reason, path=folder / name)
        for name, reason in warns:
            warnings.warn(f"{folder / name}: {reason}", ResultsWarning, stacklevel=2)
    return doc
