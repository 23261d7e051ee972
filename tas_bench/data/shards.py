"""Sharded simulation (``tas-bench simulate --shard I/N``) and the merge of its shards
(``tas-bench simulate-merge SHARD... --out DIR``).

Shards are **0-based**: ``--shard I/N`` with ``0 <= I < N`` (as ``tas-bench score --shard``).
The clips of a dataset are numbered in manifest order (train, then val, then test; within a
split by index) and shard ``I`` renders the contiguous block ``[floor(I*T/N), floor((I+1)*T/N))``
of the ``T`` clips (block sizes differ by at most one; the category plan is shuffled, so blocks
cost about the same). A clip's content depends only on (seed, split, index, category), never on
``N``, so merging the shards gives the bytes of a single-process run (every file, the manifest
and ``dataset.json`` included).

``--shard auto`` reads the rank from the environment:

* ``torchrun`` / ``accelerate launch``: ``RANK`` of ``WORLD_SIZE`` (or ``LOCAL_RANK`` of
  ``LOCAL_WORLD_SIZE`` when only those are set);
* a Slurm job array: ``(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP``
  of ``SLURM_ARRAY_TASK_COUNT`` (an array such as ``--array=0-127`` or ``--array=1-128``; a list
  of ids with gaps cannot be mapped and is refused);
* both (a torchrun job in every array task): shard ``array_index * WORLD_SIZE + RANK`` of
  ``array_count * WORLD_SIZE``.

Without ``--shard`` the environment is not read, except that a ``WORLD_SIZE`` > 1 (every
process of a torchrun job gets the same arguments, so they would all write one folder) is
refused with a pointer to ``--shard auto``.

A shard folder is ``OUT/shard-IIIII-of-NNNNN/`` (so every rank of one job can share one command
line) holding ``audio/{split}/{id}.{wav,flac}``, ``manifest.shard.jsonl`` (its clips' manifest
lines, published atomically when the shard is done) and, written last, ``shard.json`` (format,
index, count, clip range, the split sizes of the whole dataset, the manifest part's sha256 and
the ``dataset.json`` the dataset will have, with this shard's category counts). A shard folder
has no ``manifest.jsonl``, so ``validate`` and ``score`` never take it (or a killed shard) for a
dataset. The merge refuses shards of other configurations or seeds (naming the shard and what
differs), a missing, duplicate, unfinished or foreign shard, and shards of different ``N``; it
copies (or, with ``link``, hard-links) the audio, streams the manifest parts into
``OUT/manifest.jsonl`` in shard order (published last, atomically) and computes the dataset
fingerprint from the bytes it copied.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import (
    atomic_path,
    loads_json_strict,
    read_json_object,
    safe_join,
    sha256_file,
    write_json_atomic,
)

SHARD_INFO_NAME = "shard.json"
SHARD_MANIFEST_NAME = "manifest.shard.jsonl"
SHARD_FORMAT = "tas-bench-simulate-shard"
SHARD_FORMAT_VERSION = 1
_CHUNK = 1 << 20


# ----------------------------------------------------------------------------- which shard

def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` as (I, N) with 0 <= I < N (0-based), else :class:`TasBenchError`."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise TasBenchError(f"expects I/N (0-based shard I of N, or 'auto'), got {text!r}",
                            field="--shard") from None
    return check_shard((i, n), what=text)


def check_shard(shard: tuple[int, int], *, what: str = "shard") -> tuple[int, int]:
    """``shard`` = (index, count) if 0 <= index < count, else :class:`TasBenchError`."""
    i, n = shard
    if not (isinstance(i, int) and isinstance(n, int)) or isinstance(i, bool) or isinstance(n, bool):
        raise TasBenchError(f"{what}: index and count must be integers", field="--shard")
    if n < 1:
        raise TasBenchError(f"{what}: the shard count N must be >= 1", field="--shard")
    if not 0 <= i < n:
        raise TasBenchError(f"{what} is out of range: shards are 0-based, I must be in "
                            f"0..{n - 1}", field="--shard")
    return i, n


def _env_int(env: Mapping[str, str], name: str) -> int:
    value = env.get(name)
    if value is None:
        raise TasBenchError(f"{name} is not set", field="environment")
    try:
        return int(value)
    except ValueError:
        raise TasBenchError(f"{name}={value!r} is not an integer", field="environment") from None


def _slurm_array(env: Mapping[str, str]) -> tuple[int, int] | None:
    if "SLURM_ARRAY_TASK_ID" not in env:
        return None
    tid = _env_int(env, "SLURM_ARRAY_TASK_ID")
    count = _env_int(env, "SLURM_ARRAY_TASK_COUNT")
    lo = _env_int(env, "SLURM_ARRAY_TASK_MIN")
    step = _env_int(env, "SLURM_ARRAY_TASK_STEP") if "SLURM_ARRAY_TASK_STEP" in env else 1
    hi = _env_int(env, "SLURM_ARRAY_TASK_MAX") if "SLURM_ARRAY_TASK_MAX" in env else None
    index, rest = divmod(tid - lo, step) if step > 0 else (-1, 1)
    regular = hi is None or (step > 0 and (hi - lo) % step == 0 and (hi - lo) // step + 1 == count)
    if rest or not regular or not 0 <= index < count:
        raise TasBenchError(
            f"the Slurm array task {tid} (min {lo}, max {hi}, step {step}, count {count}) does "
            "not map to a shard: use a contiguous array such as --array=0-N-1 (a step is "
            "fine, a list with gaps is not) or pass --shard I/N", field="--shard")
    return index, count


def _launcher(env: Mapping[str, str]) -> tuple[int, int] | None:
    if "RANK" in env or "WORLD_SIZE" in env:
        rank, world, names = _env_int(env, "RANK"), _env_int(env, "WORLD_SIZE"), "RANK/WORLD_SIZE"
    elif "LOCAL_RANK" in env:
        rank, world = _env_int(env, "LOCAL_RANK"), _env_int(env, "LOCAL_WORLD_SIZE")
        names = "LOCAL_RANK/LOCAL_WORLD_SIZE"
    else:
        return None
    if world < 1 or not 0 <= rank < world:
        raise TasBenchError(f"{names} = {rank}/{world} is not a rank of the world size",
                            field="environment")
    return rank, world


def shard_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """The (index, count) the launcher's environment gives this process (module docstring:
    torchrun / accelerate, Slurm array, or both combined), or None when none is set."""
    env = os.environ if env is None else env
    array, launch = _slurm_array(env), _launcher(env)
    if array is None and launch is None:
        return None
    a_i, a_n = array or (0, 1)
    r_i, r_n = launch or (0, 1)
    return a_i * r_n + r_i, a_n * r_n


def resolve_shard(option: str | None, env: Mapping[str, str] | None = None
                  ) -> tuple[int, int] | None:
    """The shard of ``--shard OPTION``: ``I/N``, ``auto`` (from the environment; an error when
    it names none) or None (the whole dataset; refused under a WORLD_SIZE > 1 launcher)."""
    env = os.environ if env is None else env
    if option is None:
        world = env.get("WORLD_SIZE")
        if world is not None and world.strip().isdigit() and int(world) > 1:
            raise TasBenchError(
                f"WORLD_SIZE={world}: this is one of {world} processes (torchrun / accelerate "
                "launch), which would all write the whole dataset into one folder; pass "
                "--shard auto to render one share per process", field="--shard")
        return None
    if option.strip().lower() == "auto":
        found = shard_from_env(env)
        if found is None:
            raise TasBenchError(
                "auto found no rank in the environment (torchrun / accelerate launch "
                "set RANK and WORLD_SIZE, a Slurm array SLURM_ARRAY_TASK_ID, "
                "SLURM_ARRAY_TASK_MIN and SLURM_ARRAY_TASK_COUNT); pass --shard I/N",
                field="--shard")
        return check_shard(found, what=f"auto ({found[0]}/{found[1]})")
    return parse_shard(option)


def shard_range(total: int, shard: tuple[int, int]) -> tuple[int, int]:
    """[start, stop) of the clips (manifest order, of ``total``) that ``shard`` renders."""
    i, n = shard
    return (i * total) // n, ((i + 1) * total) // n


def shard_folder(out: str | Path, shard: tuple[int, int]) -> Path:
    """The folder shard (I, N) of a run with ``--out out`` writes: ``out/shard-IIIII-of-NNNNN``."""
    i, n = shard
    width = max(5, len(str(n - 1)))
    return Path(out) / f"shard-{i:0{width}d}-of-{n:0{width}d}"


def unpublish_shard(folder: Path) -> None:
    """Remove a shard's ``shard.json`` (first) and manifest part, so a folder being
    re-simulated is never taken for a finished shard."""
    (folder / SHARD_INFO_NAME).unlink(missing_ok=True)
    (folder / SHARD_MANIFEST_NAME).unlink(missing_ok=True)


def write_shard_info(folder: Path, *, shard: tuple[int, int], clip_range: tuple[int, int],
                     plan: Mapping[str, int], info: Mapping[str, Any], clips: int,
                     manifest_sha256: str) -> Path:
    """Write ``folder/shard.json`` (atomically; the last file of a finished shard)."""
    path = folder / SHARD_INFO_NAME
    write_json_atomic(path, {
        "format": SHARD_FORMAT, "format_version": SHARD_FORMAT_VERSION,
        "index": shard[0], "count": shard[1], "range": list(clip_range),
        "plan": dict(plan), "seed": info.get("seed"), "clips": clips,
        "manifest": SHARD_MANIFEST_NAME, "manifest_sha256": manifest_sha256,
        "dataset_info": dict(info)})
    return path


# ----------------------------------------------------------------------------- merging

@dataclass
class Shard:
    """A finished shard folder as its ``shard.json`` describes it."""

    folder: Path
    index: int
    count: int
    start: int
    stop: int
    plan: dict[str, int]
    seed: int
    clips: int
    manifest_sha256: str
    info: dict[str, Any]


def _is_dataset_folder(folder: Path) -> bool:
    from tas_bench.data.manifest import MANIFEST_NAME

    return (folder / MANIFEST_NAME).is_file()


def read_shard(folder: str | Path) -> Shard:
    """Read and check one shard folder; :class:`TasBenchError` naming it when it is not a
    finished shard of ``tas-bench simulate --shard``."""
    from tas_bench.data.simulate import MARKER_NAME

    f = Path(folder)
    if not f.is_dir():
        raise TasBenchError("shard folder not found" if not f.exists() else "is not a folder",
                            path=f)
    if not (f / SHARD_INFO_NAME).is_file():
        if _is_dataset_folder(f):
            raise TasBenchError("is a finished dataset, not a shard (simulate --shard I/N "
                                "writes OUT/shard-I-of-N folders)", path=f)
        if (f / MARKER_NAME).is_file():
            raise TasBenchError("is not a finished shard: no shard.json (its simulation was "
                                "killed or is still running; rerun that shard)", path=f)
        raise TasBenchError("is not a shard folder of tas-bench simulate --shard (no shard.json)",
                            path=f)
    doc = read_json_object(f / SHARD_INFO_NAME)
    if doc.get("format") != SHARD_FORMAT:
        raise TasBenchError(f"format is {doc.get('format')!r}, not {SHARD_FORMAT!r}",
                            path=f / SHARD_INFO_NAME)
    if doc.get("format_version") != SHARD_FORMAT_VERSION:
        raise TasBenchError(f"format_version {doc.get('format_version')!r} is not "
                            f"{SHARD_FORMAT_VERSION} (made by another tas-bench version)",
                            path=f / SHARD_INFO_NAME)
    try:
        rng = doc["range"]
        plan = {str(k): int(v) for k, v in doc["plan"].items()}
        s = Shard(folder=f, index=int(doc["index"]), count=int(doc["count"]),
                  start=int(rng[0]), stop=int(rng[1]), plan=plan, seed=int(doc["seed"]),
                  clips=int(doc["clips"]), manifest_sha256=str(doc["manifest_sha256"]),
                  info=dict(doc["dataset_info"]))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise TasBenchError(f"malformed shard description ({type(exc).__name__}: {exc})",
                            path=f / SHARD_INFO_NAME) from None
    check_shard((s.index, s.count), what=f"{f / SHARD_INFO_NAME}: shard {s.index}/{s.count}")
    if (s.start, s.stop) != shard_range(sum(plan.values()), (s.index, s.count)) \
            or s.clips != s.stop - s.start:
        raise TasBenchError(f"clip range {rng} and count {s.clips} do not match shard "
                            f"{s.index}/{s.count} of {sum(plan.values())} clips",
                            path=f / SHARD_INFO_NAME)
    return s


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): obj}


def _config_of(s: Shard) -> dict[str, Any]:
    """What must be equal across the shards of one dataset: everything but category counts."""
    info = {k: v for k, v in s.info.items() if k != "counts"}
    return {"dataset_info": info, "plan": s.plan, "seed": s.seed}


def check_shard_set(shards: Sequence[Shard]) -> list[Shard]:
    """The shards in index order if they make one complete dataset, else
    :class:`TasBenchError`: differing seeds or configurations (naming the shard and the
    fields), different shard counts, a shard given twice, a missing shard."""
    if not shards:
        raise TasBenchError("no shard folders given", field="SHARD")
    first = shards[0]
    for s in shards[1:]:
        if s.seed != first.seed:
            raise TasBenchError(f"was simulated with seed {s.seed}, shard {first.folder} with "
                                f"seed {first.seed}; the shards of one dataset share one seed",
                                path=s.folder)
        a, b = _flat(_config_of(first)), _flat(_config_of(s))
        diff = sorted(k for k in a.keys() | b.keys() if a.get(k, ...) != b.get(k, ...))
        if diff:
            shown = ", ".join(diff[:6]) + (f" (+{len(diff) - 6} more)" if len(diff) > 6 else "")
            raise TasBenchError(f"has another configuration than shard {first.folder} "
                                f"(differs in {shown}); merge only the shards of one run",
                                path=s.folder)
        if s.count != first.count:
            raise TasBenchError(f"is shard {s.index} of {s.count}, shard {first.folder} one of "
                                f"{first.count}; merge the shards of one --shard I/N run",
                                path=s.folder)
    by_index: dict[int, Shard] = {}
    for s in shards:
        if s.index in by_index:
            other = by_index[s.index]
            same = os.path.realpath(other.folder) == os.path.realpath(s.folder)
            raise TasBenchError(f"shard {s.index} of {s.count} is given twice"
                                + (" (the same folder)" if same else f": {other.folder} and "
                                   f"{s.folder}"), path=s.folder)
        by_index[s.index] = s
    missing = [i for i in range(first.count) if i not in by_index]
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise TasBenchError(f"shard(s) {shown} of {first.count} missing (given "
                            f"{len(by_index)} of {first.count}; shards are 0-based)",
                            field="SHARD")
    return [by_index[i] for i in range(first.count)]


@dataclass
class MergeSummary:
    """What :func:`merge_shards` produced: folder, shard and clip counts, fingerprint, seconds."""

    out: Path
    shards: int
    n_clips: int
    counts: dict[str, dict[str, int]]
    fingerprint: str
    seconds: float


def _expected_clips(plan: Mapping[str, int]) -> Iterable[tuple[str, int]]:
    from tas_bench.data.manifest import SPLITS

    for split in SPLITS:
        for i in range(int(plan.get(split, 0))):
            yield split, i


def _copy_hashed(src: Path, dst: Path, link: bool) -> str:
    """Copy (or hard-link) ``src`` to ``dst`` atomically; the hex sha256 of its bytes."""
    import hashlib

    h = hashlib.sha256()
    if link:
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.unlink(missing_ok=True)
        try:
            os.link(src, dst)
        except OSError as exc:
            raise TasBenchError(f"cannot hard-link {src} ({exc.strerror}); --link needs the "
                                "shards and --out on one filesystem", path=dst) from None
        return sha256_file(dst)
    with atomic_path(dst) as tmp, open(src, "rb") as fi, open(tmp, "wb") as fo:
        while chunk := fi.read(_CHUNK):
            h.update(chunk)
            fo.write(chunk)
    return h.hexdigest()


def _check_out(out: Path, shards: Sequence[Shard]) -> None:
    real = Path(os.path.realpath(out))
    for s in shards:
        sf = Path(os.path.realpath(s.folder))
        if real == sf or sf in real.parents:
            raise TasBenchError(f"is (inside) the shard folder {s.folder}; choose another folder",
                                path=out, field="--out")


def merge_shards(folders: Sequence[str | Path], out: str | Path, *, force: bool = False,
                 link: bool = False, progress: bool = False) -> MergeSummary:
    """Merge the shard folders of one ``simulate --shard I/N`` run into the dataset folder
    ``out``; its files are byte-identical to a single-process run's.

    Checks every shard first (:func:`read_shard`, :func:`check_shard_set`); then copies (or,
    with ``link``, hard-links) each clip's audio, checks each manifest line against the clip it
    must be (split and per-clip seed), and streams the lines into ``out/manifest.jsonl``,
    written last; a shard whose manifest part differs from its ``shard.json`` (count, sha256) is
    refused before anything is published. ``force``: as for ``simulate``, write into a
    non-empty folder that is not a previous tas-bench dataset. Memory is flat in the number of
    clips. Returns counts, fingerprint and wall time (s).
    """
    from tas_bench.data.manifest import (
        DATASET_INFO_NAME,
        FingerprintBuilder,
        ManifestWriter,
    )
    from tas_bench.data.simulate import _prepare_out, clip_seed

    t0 = time.perf_counter()
    out = Path(out)
    shards = check_shard_set([read_shard(f) for f in folders])
    _check_out(out, shards)
    first = shards[0]
    counts: dict[str, dict[str, int]] = {}
    for s in shards:
        for split, cats in (s.info.get("counts") or {}).items():
            acc = counts.setdefault(split, {})
            for cat, k in cats.items():
                acc[cat] = acc.get(cat, 0) + int(k)
    info = dict(first.info, counts=counts)
    _prepare_out(out, force)
    expected = iter(_expected_clips(first.plan))
    fp = FingerprintBuilder()
    bar = None
    if progress:
        import sys

        from tqdm import tqdm
        bar = tqdm(total=sum(first.plan.values()), desc="merge", unit="clip", file=sys.stderr)
    try:
        with ManifestWriter(out) as mw:
            for s in shards:
                _merge_one(s, out, mw, fp, expected, first.seed, clip_seed, link, bar)
            write_json_atomic(out / DATASET_INFO_NAME, info)
    finally:
        if bar:
            bar.close()
    return MergeSummary(out=out, shards=len(shards), n_clips=mw.count, counts=counts,
                        fingerprint=fp.digest(mw.sha256), seconds=time.perf_counter() - t0)


def _merge_one(s: Shard, out: Path, mw: Any, fp: Any, expected: Any, seed: int,
               clip_seed: Any, link: bool, bar: Any) -> None:
    import hashlib

    part = s.folder / SHARD_MANIFEST_NAME
    if not part.is_file():
        raise TasBenchError(f"shard {s.index}/{s.count} has no {SHARD_MANIFEST_NAME}",
                            path=s.folder)
    h = hashlib.sha256()
    n = 0
    with open(part, "rb") as f:
        for raw in f:
            h.update(raw)
            if not raw.strip():
                continue
            n += 1
            where = f"{part}: line {n}"
            try:
                rec = loads_json_strict(raw.decode("utf-8"))
                split, index = next(expected, (None, None))
                if split is None or n > s.clips:
                    raise TasBenchError(f"{where}: more clips than shard.json says ({s.clips})")
                if rec.get("split") != split or rec.get("seed") != clip_seed(seed, split, index):
                    raise TasBenchError(f"{where}: is clip {rec.get('id')!r}, expected clip "
                                        f"{index} of {split} (seed {seed})")
                rel = rec["audio"]
                src = safe_join(s.folder, rel, what="audio")
                dst = safe_join(out, rel, what="audio")
            except (ValueError, KeyError, AttributeError, TypeError) as exc:
                raise TasBenchError(f"{where}: not a clip of this shard ({exc})") from None
            if not src.is_file():
                raise TasBenchError(f"{where}: audio file {rel} is missing from the shard",
                                    path=s.folder)
            fp.add(rec["id"], _copy_hashed(src, dst, link))
            mw.add_line(raw)
            if bar:
                bar.update()
    if n != s.clips or h.hexdigest() != s.manifest_sha256:
        raise TasBenchError(f"{SHARD_MANIFEST_NAME} differs from shard.json ({n} clips, "
                            f"{s.clips} expected, or other bytes): the shard was modified; "
                            "rerun it", path=s.folder)


__all__: Sequence[str] = ("parse_shard", "check_shard", "shard_from_env", "resolve_shard",
                          "shard_range", "shard_folder", "read_shard", "check_shard_set",
                          "merge_shards", "MergeSummary", "SHARD_INFO_NAME",
                          "SHARD_MANIFEST_NAME")
