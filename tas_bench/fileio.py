"""Atomic file writes and hashing.

Every file tas-bench writes that another stage reads (wavs, manifests, results, checkpoints,
cache entries) is written to a temporary file in the same folder and renamed into place, so a
killed process never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{final.name}.", suffix=suffix or final.suffix or ".tmp", dir=final.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON (stable bytes for equal content)."""
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (sorted keys): a config hash."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def safe_join(root: str | os.PathLike[str], relative: str, *, what: str = "path") -> Path:
    """Resolve ``relative`` under ``root``; refuse absolute paths and paths that escape ``root``.

    Symlinks are resolved before the check, so a link pointing outside ``root`` is refused too.
    """
    from tas_bench.errors import TasBenchError

    root_p = Path(root).resolve()
    rel = Path(relative)
    if rel.is_absolute():
        raise TasBenchError(f"{what} must be relative to the dataset folder, got {relative!r}")
    full = (root_p / rel).resolve()
    if full != root_p and root_p not in full.parents:
        raise TasBenchError(f"{what} {relative!r} escapes the folder {root_p}")
    return full


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse a JSON file that must hold an object; a malformed file is a
    :class:`~tas_bench.errors.TasBenchError` naming it."""
    from tas_bench.errors import TasBenchError

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TasBenchError(f"malformed JSON ({exc})", path=path) from None
    if not isinstance(doc, dict):
        raise TasBenchError("expected a JSON object", path=path)
    return doc
