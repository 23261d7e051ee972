"""Atomic file writes and hashing.

Every file tas-bench writes that another stage reads (wavs, manifests, results, checkpoints,
cache entries) is written to a temporary file in the same folder and renamed into place, so a
killed process never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


TMP_MARK = ".tas-tmp."


def _umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def host_tag() -> str:
    """This machine's host name as it appears in temporary names (dots and slashes -> '-')."""
    return socket.gethostname().replace(".", "-").replace("/", "-") or "host"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary name is ``.{name}.tas-tmp.{host}.{pid}.{random}{suffix}`` so that a later run
    can recognise and remove what a killed process left (:func:`sweep_orphans`). Before the
    rename the file is fsynced and given the mode a plain ``open()`` would give (0666 less the
    umask; ``mkstemp`` alone leaves 0600), and the folder is fsynced after it, so a power loss
    leaves either the old file or the whole new one. On an exception the temporary file is
    removed and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{final.name}{TMP_MARK}{host_tag()}.{os.getpid()}.",
        suffix=suffix or final.suffix or ".tmp",
        dir=final.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary folder next to ``path``; on success rename it onto ``path``
    (replacing a folder already there), so readers see the old folder or the whole new one.

    The name carries :data:`TMP_MARK`, host and pid like :func:`atomic_path`'s, so
    :func:`sweep_orphans` removes what a killed writer left. On an exception the temporary
    folder is removed and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}{TMP_MARK}{host_tag()}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.mkdir()  # mode 0777 less the umask, like any folder
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphaned_temp(path: Path) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_path` whose writer is gone.

    Only files of this host whose process no longer exists count; a file of another host (a
    shared cluster folder) counts once it is older than a day, since its writer cannot be asked.
    """
    name = path.name
    if not name.startswith(".") or TMP_MARK not in name:
        return False
    rest = name.split(TMP_MARK, 1)[1].split(".")
    if len(rest) < 3 or not rest[1].isdigit():
        return False
    host, pid = rest[0], int(rest[1])
    if host == host_tag():
        return not _pid_alive(pid)
    try:
        return time.time() - path.stat().st_mtime > 86400
    except OSError:
        return False


def sweep_orphans(folder: str | os.PathLike[str], *, recursive: bool = False) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder``; returns them.

    Called by every command at the start of its work on an output folder (cache, predictions,
    results, run folders), so a SIGKILL mid-write costs nothing but the lost work.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    found = root.rglob(f".*{TMP_MARK}*") if recursive else root.glob(f".*{TMP_MARK}*")
    removed = []
    for p in found:
        if orphaned_temp(p) and not p.is_symlink():
            try:
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()
                removed.append(p)
            except OSError:
                continue
    return removed


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
    from tas_bench.runtime.errors import TasBenchError

    root_p = Path(root).resolve()
    rel = Path(relative)
    if rel.is_absolute():
        raise TasBenchError(f"{what} must be relative to the dataset folder, got {relative!r}")
    full = (root_p / rel).resolve()
    if full != root_p and root_p not in full.parents:
        raise TasBenchError(f"{what} {relative!r} escapes the folder {root_p}")
    return full


#: Limits of :func:`loads_json_strict` and :func:`read_json_object`. Nothing tas-bench writes
#: comes near them (a manifest line is about 1 KB, nesting stays under 10 levels); they turn
#: hostile files into one clear error instead of a RecursionError, a quadratic-time integer
#: conversion or an unbounded read.
MAX_JSON_DEPTH = 100
MAX_JSON_INT_DIGITS = 1000
MAX_JSON_FILE_BYTES = 64 << 20
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONProblem(ValueError):
    """Why a JSON text was refused: ``reason``, and the 1-based ``line``/``column`` when known
    (0 when the parser cannot say where, e.g. for an over-long integer)."""

    def __init__(self, reason: str, line: int = 0, column: int = 0) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        where = f" at line {line} column {column}" if line else ""
        super().__init__(f"malformed JSON ({reason}{where})")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed; write null for a missing number")


def _parse_int(text: str) -> int:
    digits = len(text) - text.startswith("-")
    if digits > MAX_JSON_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits (at most {MAX_JSON_INT_DIGITS} allowed)")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} does not fit a 64-bit float")
    return value


def _check_json_tree(doc: Any, surrogates: bool) -> None:
    # iterative, so that no depth of nesting can overflow the Python stack
    stack: list[tuple[Any, int]] = [(doc, 0)]
    while stack:
        obj, depth = stack.pop()
        if isinstance(obj, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise JSONProblem(f"nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(obj, dict):
                if surrogates:
                    stack.extend((k, depth) for k in obj)
                stack.extend((v, depth + 1) for v in obj.values())
            else:
                stack.extend((v, depth + 1) for v in obj)
        elif surrogates and isinstance(obj, str):
            try:
                obj.encode("utf-8")
            except UnicodeEncodeError:
                raise JSONProblem("a string holds an unpaired UTF-16 surrogate escape "
                                  "(\\ud800-\\udfff), which is not valid Unicode") from None


def loads_json_strict(text: str) -> Any:
    """Parse JSON ``text`` strictly; raise :class:`JSONProblem` (a ``ValueError``) if refused.

    Beyond :func:`json.loads` it refuses ``NaN``/``Infinity`` literals, numbers that overflow a
    float (``1e999``), integers of more than :data:`MAX_JSON_INT_DIGITS` digits, nesting deeper
    than :data:`MAX_JSON_DEPTH` levels and strings with unpaired surrogate escapes, so that
    every value it returns can be written back as strict UTF-8 JSON.
    """
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_int=_parse_int,
                         parse_float=_parse_float)
    except json.JSONDecodeError as exc:
        raise JSONProblem(exc.msg, exc.lineno, exc.colno) from None
    except RecursionError:
        raise JSONProblem(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # raised by the hooks above (or by int() itself)
        raise JSONProblem(str(exc).split(";")[0]) from None
    surrogates = bool(_SURROGATE_ESCAPE.search(text))
    if surrogates or text.count("[") + text.count("{") >= MAX_JSON_DEPTH:
        _check_json_tree(doc, surrogates)
    return doc


def read_json_object(path: str | os.PathLike[str], *,
                     max_bytes: int = MAX_JSON_FILE_BYTES) -> dict[str, Any]:
    """Parse a JSON file that must hold an object (results.json, system cards, dataset.json).

    Anything wrong is a :class:`~tas_bench.runtime.errors.TasBenchError` naming the file (and the line
    where it can): missing, not a regular file (a FIFO is refused before it is opened, so it
    cannot hang), larger than ``max_bytes`` (the file is read whole, so this bounds memory),
    invalid UTF-8, or JSON that :func:`loads_json_strict` refuses.
    """
    from tas_bench.runtime.errors import TasBenchError

    p = Path(path)
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            raise TasBenchError("is not a regular file", path=p)
        if st.st_size > max_bytes:
            raise TasBenchError(f"is {st.st_size} bytes; JSON files over {max_bytes} bytes are refused",
                                path=p)
        with open(p, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise TasBenchError("not found", path=p) from None
    except OSError as exc:
        raise TasBenchError(f"cannot be read ({exc.strerror or exc})", path=p) from None
    if len(data) > max_bytes:
        raise TasBenchError(f"is over {max_bytes} bytes; larger JSON files are refused", path=p)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise TasBenchError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at line {line} "
                            f"column {col})", path=p) from None
    try:
        doc = loads_json_strict(text)
    except JSONProblem as exc:
        raise TasBenchError(str(exc), path=p) from None
    if not isinstance(doc, dict):
        raise TasBenchError(f"expected a JSON object, found {_json_type(doc)}", path=p)
    return doc


def _json_type(doc: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(doc), type(doc).__name__)
