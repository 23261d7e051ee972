"""User-registered systems: ``$TAS_BENCH_HOME/systems/NAME.json`` (default ``~/.cache/tas-bench``).

A record holds the run folder, the sha256 of its checkpoint, the model-config hash and the
system card at registration time. Loading a registered system re-checks the checkpoint hash,
so a checkpoint modified after registration is refused instead of silently scored.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tas_bench.errors import TasBenchError
from tas_bench.fileio import write_json_atomic

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._\-]{0,63}$")


def tas_bench_home() -> Path:
    """The per-user state folder: ``$TAS_BENCH_HOME`` or ``~/.cache/tas-bench``."""
    env = os.environ.get("TAS_BENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tas-bench"


def systems_dir() -> Path:
    return tas_bench_home() / "systems"


def check_name(name: str) -> str:
    """A system name: lower-case letters, digits, ``. _ -``, at most 64 characters."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise TasBenchError(f"invalid system name {name!r} (use lower-case letters, digits, . _ -)",
                            field="name")
    return name


def save_record(name: str, record: dict[str, Any]) -> Path:
    """Write the registration record of ``name`` atomically."""
    path = systems_dir() / f"{check_name(name)}.json"
    write_json_atomic(path, {**record, "name": name})
    return path


def load_record(name: str) -> dict[str, Any] | None:
    """The record of a registered system, or ``None`` if ``name`` is not registered."""
    if not _NAME_RE.match(name or ""):
        return None
    path = systems_dir() / f"{name}.json"
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TasBenchError(f"malformed system record ({exc})", path=path) from None
    if not isinstance(rec, dict) or "run" not in rec or "checkpoint_sha256" not in rec:
        raise TasBenchError("system record lacks 'run' or 'checkpoint_sha256'", path=path)
    return rec


def list_records() -> list[dict[str, Any]]:
    """All registration records, sorted by name (malformed files are skipped)."""
    root = systems_dir()
    out = []
    if root.is_dir():
        for p in sorted(root.glob("*.json")):
            try:
                rec = load_record(p.stem)
            except TasBenchError:
                continue
            if rec is not None:
                out.append(rec)
    return out


def remove_record(name: str) -> bool:
    """Unregister ``name``; returns whether a record existed."""
    path = systems_dir() / f"{check_name(name)}.json"
    if path.is_file():
        path.unlink()
        return True
    return False
