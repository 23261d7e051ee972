"""Content-addressed cache of per-clip evaluator outputs.

The key of an entry is the sha256 of everything the output depends on: evaluator name,
version and config hash, backbone weight hashes, the sha256 of the prediction and reference
files, the audio loading policy, and the manifest fields the evaluator reads. A changed input
therefore gives a different key; an entry is never served for an input it was not computed
from. Entries are ``.npz`` files written atomically (a killed run leaves no partial entry);
an unreadable entry is treated as a miss and rewritten.

Location: ``$TAS_BENCH_CACHE`` or ``~/.cache/tas-bench/cache``. Safe to delete at any time.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.base import ClipOutput
from tas_bench.fileio import stable_hash, write_bytes_atomic

CACHE_FORMAT = "1"


def default_cache_dir() -> Path:
    """The cache folder: ``$TAS_BENCH_CACHE`` or ``~/.cache/tas-bench/cache``."""
    env = os.environ.get("TAS_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "tas-bench" / "cache"


class OutputCache:
    """Per-clip :class:`ClipOutput` store keyed by content hashes. ``root=None`` disables it."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        """The cache key of an output: sha256 of the canonical JSON of ``parts``."""
        return stable_hash({"cache_format": CACHE_FORMAT, **parts})

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> ClipOutput | None:
        """The stored output for ``key``, or None (missing, disabled or unreadable)."""
        if self.root is None:
            return None
        path = self._path(key)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                values = json.loads(bytes(z["__values__"]).decode("utf-8"))
                arrays = {k: z[k] for k in z.files if k != "__values__"}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
            self.misses += 1
            return None
        self.hits += 1
        return ClipOutput(
            values={k: (float("nan") if v is None else float(v)) for k, v in values.items()},
            arrays=arrays,
        )

    def put(self, key: str, output: ClipOutput) -> None:
        """Store ``output`` under ``key`` atomically."""
        if self.root is None:
            return
        values = {k: (float(v) if np.isfinite(v) else None) for k, v in output.values.items()}
        blob = json.dumps(values, sort_keys=True).encode("utf-8")
        buf = io.BytesIO()
        np.savez(buf, __values__=np.frombuffer(blob, dtype=np.uint8), **output.arrays)
        write_bytes_atomic(self._path(key), buf.getvalue())

