"""Content-addressed cache of per-clip evaluator outputs.

Key. The key of an entry is the sha256 of everything the output depends on (assembled by
``tas_bench.pipeline.scoring._Scorer.key``): evaluator name, version and config hash, the sha256 of each
backbone/assessor weight file, the sha256 of the prediction and reference audio files, the audio
policy (resampler, length policy, the rate the evaluator is fed at), and the manifest fields the
evaluator reads (``Evaluator.needs``, plus the clip id when it reads any). A changed input
therefore gives a different key; an entry is never served for an input it was not computed
from. Anything outside the key - file names and modification times, manifest fields the
evaluator does not read, the order of the clips, batch sizes - does not cause a recomputation.
Corpus metrics are cached under a key made of the evaluator's identity and the (clip id, clip
key) list in manifest order: the order is part of that key because the float sums of a corpus
state are only equal to the last bit when they are summed in the same order.

Entries (:data:`CACHE_FORMAT` "2") are uncompressed zip files (``.npz``; ``np.load`` can read
them) holding ``__values__.json`` (metric values), one ``NAME.npy`` per array, and
``__meta__.json`` = ``{"format", "key", "digest"}``, where ``digest`` is the sha256 of the key
and of every other member's name, length and bytes. :meth:`OutputCache.get` checks the format,
that the entry was computed for the key asked for, and the digest *before* parsing anything;
an entry that is missing, empty (what a power loss can leave), truncated, corrupted, hand-edited,
copied under another key's name, of an older format, or not a regular file is a miss: the output
is recomputed and the entry replaced. This is an integrity check against accidents, not a
signature: someone who can write the cache folder and recompute the digest can still forge an
entry. Entries are written atomically and fsynced (:func:`tas_bench.runtime.fileio.atomic_path`), so a
killed run or a power loss leaves either no entry or a whole one; the temporary files a killed
writer leaves are swept at the start of the next scoring run (:func:`tas_bench.runtime.fileio.sweep_orphans`).

Location: ``$TAS_BENCH_CACHE`` or ``~/.cache/tas-bench/cache``. Safe to delete at any time. A
file in place of the cache folder is an error naming it (:class:`~tas_bench.runtime.errors.TasBenchError`,
raised before any work), not a silently disabled cache: ``--shard`` runs hand their results over
through the cache, and a silent fallback would hide a misconfigured ``--cache-dir``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from evaluators.base import ClipOutput
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import stable_hash, write_bytes_atomic

CACHE_FORMAT = "2"

_META = "__meta__.json"
_VALUES = "__values__.json"
_HINT = "remove it, point --cache-dir / $TAS_BENCH_CACHE at a folder, or use --no-cache"


def default_cache_dir() -> Path:
    """The cache folder: ``$TAS_BENCH_CACHE`` or ``~/.cache/tas-bench/cache``."""
    env = os.environ.get("TAS_BENCH_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "tas-bench" / "cache"


def entry_digest(key: str, members: dict[str, bytes]) -> str:
    """Hex sha256 of ``key`` and of each member's name, byte length and bytes (sorted by name):
    the integrity digest stored in an entry's ``__meta__.json``."""
    h = hashlib.sha256()
    h.update(f"tas-bench-cache {CACHE_FORMAT} {key}\n".encode())
    for name in sorted(members):
        data = members[name]
        h.update(f"{len(name)}:{name}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def encode_entry(key: str, output: ClipOutput) -> bytes:
    """The bytes of the cache entry holding ``output`` under ``key`` (see the module doc)."""
    members: dict[str, bytes] = {}
    values = {k: (float(v) if math.isfinite(v) else None) for k, v in output.values.items()}
    members[_VALUES] = json.dumps(values, sort_keys=True).encode("utf-8")
    for name, arr in output.arrays.items():
        if name.startswith("__") or "/" in name:
            raise ValueError(f"cache entry array name {name!r} is reserved or not a plain name")
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
        members[f"{name}.npy"] = buf.getvalue()
    meta = {"format": CACHE_FORMAT, "key": key, "digest": entry_digest(key, members)}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(members):
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), members[name])
        zf.writestr(zipfile.ZipInfo(_META, date_time=(1980, 1, 1, 0, 0, 0)),
                    json.dumps(meta, sort_keys=True).encode("utf-8"))
    return out.getvalue()


def decode_entry(key: str, data: bytes) -> ClipOutput:
    """The output stored in entry bytes ``data``; raises ValueError unless the entry is of this
    format, was written for ``key`` and its digest matches (checked before any parsing)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValueError(f"not a cache entry ({exc})") from None
    with zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise ValueError("duplicate members")
        if any(i.compress_type != zipfile.ZIP_STORED for i in infos):
            raise ValueError("compressed member")  # entries are stored; refuse to inflate
        if _META not in names or _VALUES not in names:
            raise ValueError("not a format-2 cache entry")
        meta = json.loads(zf.read(_META).decode("utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
            raise ValueError("other cache format")
        if meta.get("key") != key:
            raise ValueError("entry was computed for another key")
        members = {n: zf.read(n) for n in names if n != _META}
    if meta.get("digest") != entry_digest(key, members):
        raise ValueError("digest mismatch")
    values = json.loads(members.pop(_VALUES).decode("utf-8"))
    if not isinstance(values, dict):
        raise ValueError("values are not an object")
    clean: dict[str, float] = {}
    for k, v in values.items():
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError(f"value {k!r} is not a number")
        clean[str(k)] = float("nan") if v is None else float(v)
    arrays: dict[str, np.ndarray] = {}
    for name, blob in members.items():
        if not name.endswith(".npy"):
            raise ValueError(f"unexpected member {name!r}")
        arrays[name[:-4]] = np.lib.format.read_array(io.BytesIO(blob), allow_pickle=False)
    return ClipOutput(values=clean, arrays=arrays)


class OutputCache:
    """Per-clip :class:`ClipOutput` store keyed by content hashes. ``root=None`` disables it.

    Opening a cache folder creates it; a path that exists and is not a folder (or cannot be created) is a
    :class:`~tas_bench.runtime.errors.TasBenchError` naming it. ``hits``/``misses`` count lookups;
    ``unreadable`` counts the misses where an entry existed but failed its checks.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = None if root is None else Path(root)
        self.hits = 0
        self.misses = 0
        self.unreadable = 0
        if self.root is not None:
            self._open(self.root)

    @staticmethod
    def _open(root: Path) -> None:
        if root.exists() and not root.is_dir():
            raise TasBenchError("the cache folder is not a folder (a file is in its place)",
                                path=root, hint=_HINT)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TasBenchError(f"cannot create the cache folder ({exc.strerror or exc})",
                                path=root, hint=_HINT) from None

    @staticmethod
    def key(parts: dict[str, Any]) -> str:
        """The cache key of an output: sha256 of the canonical JSON of ``parts``."""
        return stable_hash({"cache_format": CACHE_FORMAT, **parts})

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.npz"

    def get(self, key: str) -> ClipOutput | None:
        """The stored output for ``key``, or None (missing, disabled, or failing its checks)."""
        if self.root is None:
            return None
        path = self._path(key)
        if not path.is_file():  # missing, a folder or a FIFO in its place: never opened
            self.misses += 1
            return None
        try:
            out = decode_entry(key, path.read_bytes())
        except Exception:  # noqa: BLE001 - whatever makes an entry unreadable, recomputing is right
            self.misses += 1
            self.unreadable += 1
            return None
        self.hits += 1
        return out

    def put(self, key: str, output: ClipOutput) -> None:
        """Store ``output`` under ``key`` atomically (fsynced), replacing whatever is there; a
        folder or file in the way of the entry is removed first. An entry that still cannot be
        written is a :class:`~tas_bench.runtime.errors.TasBenchError` naming it."""
        if self.root is None:
            return
        path = self._path(key)
        data = encode_entry(key, output)
        try:
            write_bytes_atomic(path, data)
            return
        except OSError:
            self._clear_way(path)
        try:
            write_bytes_atomic(path, data)
        except OSError as exc:
            raise TasBenchError(f"cannot write cache entry ({exc.strerror or exc})", path=path,
                                hint="free space or fix permissions, or use --no-cache") from None

    def _clear_way(self, path: Path) -> None:
        """Remove what blocks writing ``path``: a non-folder in place of its shard folder, or a
        folder in place of the entry (both inside the cache folder, which holds only entries)."""
        shard = path.parent
        with contextlib.suppress(OSError):
            if shard.is_symlink() or (shard.exists() and not shard.is_dir()):
                shard.unlink()
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
