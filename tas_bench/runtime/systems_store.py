"""Registered runs: ``$TAS_BENCH_HOME/{role}s/NAME.json`` (default ``~/.cache/tas-bench``).

``role`` is ``"system"`` (``systems/``, what ``tas-bench generate`` uses) or ``"assessor"``
(``assessors/``, e.g. a trained spatial-QA model); :func:`tas_bench.runtime.runs.register_run` writes
the records. A record holds the run folder, the sha256 of its checkpoint, the model-config hash and the
system card at registration time. Loading a registered system re-checks the checkpoint hash,
so a checkpoint modified after registration is refused instead of silently scored.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import write_json_atomic

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._\-]{0,63}$")


def tas_bench_home() -> Path:
    """The per-user state folder: ``$TAS_BENCH_HOME`` or ``~/.cache/tas-bench``."""
    env = os.environ.get("TAS_BENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tas-bench"


def systems_dir(role: str = "system") -> Path:
    """The folder of the records of ``role`` (``systems/``, ``assessors/``)."""
    if role not in ("system", "assessor"):
        raise TasBenchError(f"unknown role {role!r}; expected 'system' or 'assessor'", field="role")
    return tas_bench_home() / f"{role}s"


def check_name(name: str) -> str:
    """A system name: lower-case letters, digits, ``. _ -``, at most 64 characters."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise TasBenchError(f"invalid system name {name!r} (use lower-case letters, digits, . _ -)",
                            field="name")
    return name


def save_record(name: str, record: dict[str, Any], role: str = "system") -> Path:
    """Write the registration record of ``name`` atomically."""
    path = systems_dir(role) / f"{check_name(name)}.json"
    write_json_atomic(path, {**record, "name": name})
    return path


def load_record(name: str, role: str = "system") -> dict[str, Any] | None:
    """The record of a registered run, or ``None`` if ``name`` is not registered."""
    if not _NAME_RE.match(name or ""):
        return None
    path = systems_dir(role) / f"{name}.json"
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TasBenchError(f"malformed system record ({exc})", path=path) from None
    if not isinstance(rec, dict) or "run" not in rec or "checkpoint_sha256" not in rec:
        raise TasBenchError("system record lacks 'run' or 'checkpoint_sha256'", path=path)
    return rec


def list_records(role: str = "system") -> list[dict[str, Any]]:
    """All registration records of ``role``, sorted by name (malformed files are skipped)."""
    root = systems_dir(role)
    out = []
    if root.is_dir():
        for p in sorted(root.glob("*.json")):
            try:
                rec = load_record(p.stem, role)
            except TasBenchError:
                continue
            if rec is not None:
                out.append(rec)
    return out


def remove_record(name: str, role: str = "system") -> bool:
    """Unregister ``name``; returns whether a record existed."""
    path = systems_dir(role) / f"{check_name(name)}.json"
    if path.is_file():
        path.unlink()
        return True
    return False


def registered_run_folder(role: str, name: str) -> Path | None:
    """The run folder registered as ``name`` for ``role`` (``"system"``/``"assessor"``), or
    ``None`` when no such name is registered. The folder is not checked here; loading it
    through :func:`tas_bench.runtime.runs.load_registered` re-checks the checkpoint hash."""
    rec = load_record(name, role)
    return None if rec is None else Path(rec["run"])
