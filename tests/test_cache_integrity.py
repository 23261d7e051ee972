"""Cache integrity (issue 8, items 9 and 10): an empty, truncated, corrupted, hand-edited or
misplaced entry is a miss (recomputed and replaced), never a crash and never a result; what
stands in the way of an entry is cleared; a file in place of the cache folder is a clear error;
entries are fsynced before they are renamed into place."""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from datagen import make_dataset, write_predictions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluators.base import ClipOutput, Evaluator, MetricSpec
from evaluators.registry import EVALUATORS
from tas_bench.pipeline.scoring import ScoreOptions, score
from tas_bench.runtime.cache import CACHE_FORMAT, OutputCache, decode_entry, encode_entry
from tas_bench.runtime.errors import TasBenchError

CALLS: Counter[str] = Counter()


class Counting(Evaluator):
    """mean(pred * ref) per clip, counting its calls."""

    name = "test-cache-integrity"
    version = "1"
    metrics = (MetricSpec("dot", True, "", "mean(pred * ref)"),)
    batch_size = 4

    def __init__(self) -> None:
        pass

    def process_batch(self, batch):  # noqa: ANN001, ANN201
        out = []
        for b in batch:
            CALLS[b.clip.id] += 1
            out.append(ClipOutput({"dot": float(np.mean(b.pred * b.ref))}, {"emb": b.pred[:, :8].copy()}))
        return out


if Counting.name not in EVALUATORS:
    EVALUATORS.register(Counting.name, Counting)

OUT = ClipOutput({"x": 1.5, "y": float("nan")}, {"emb": np.arange(6.0).reshape(2, 3),
                                                 "ids": np.array([3, 1, 2], dtype=np.int64)})


def _same(a: ClipOutput, b: ClipOutput) -> bool:
    if a.values.keys() != b.values.keys() or a.arrays.keys() != b.arrays.keys():
        return False
    for k, v in a.values.items():
        w = b.values[k]
        if not (v == w or (math.isnan(v) and math.isnan(w))):
            return False
    return all(a.arrays[k].dtype == b.arrays[k].dtype and np.array_equal(a.arrays[k], b.arrays[k])
               for k in a.arrays)


def _stored(tmp_path: Path) -> tuple[OutputCache, str, Path]:
    cache = OutputCache(tmp_path / "cache")
    key = cache.key({"clip": "a"})
    cache.put(key, OUT)
    return cache, key, cache._path(key)


def _rewrite_member(path: Path, member: str, data: bytes) -> None:
    """Hand-edit one member of an entry, keeping the rest (its stored digest included)."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members[member] = data
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    path.write_bytes(buf.getvalue())


# ---- unit: one entry ---------------------------------------------------------------------

def test_round_trip_and_format(tmp_path: Path) -> None:
    cache, key, path = _stored(tmp_path)
    got = cache.get(key)
    assert got is not None and _same(got, OUT)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("__meta__.json"))
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    assert meta["format"] == CACHE_FORMAT == "2" and meta["key"] == key and len(meta["digest"]) == 64
    with np.load(path, allow_pickle=False) as z:  # still an .npz that numpy can open
        np.testing.assert_array_equal(z["emb"], OUT.arrays["emb"])
    assert encode_entry(key, OUT) == path.read_bytes()  # deterministic bytes


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "flipped byte"])
def test_damaged_entry_is_a_miss_and_is_replaced(tmp_path: Path, damage: str) -> None:
    cache, key, path = _stored(tmp_path)
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"\x00" * 300,
                      "flipped byte": data[:60] + bytes([data[60] ^ 0xFF]) + data[61:]}[damage])
    assert cache.get(key) is None and cache.misses == 1 and cache.unreadable == 1
    cache.put(key, OUT)
    got = cache.get(key)
    assert got is not None and _same(got, OUT)


def test_hand_edited_entry_is_a_miss(tmp_path: Path) -> None:
    cache, key, path = _stored(tmp_path)
    _rewrite_member(path, "__values__.json", json.dumps({"x": 99.0, "y": None}).encode())
    assert cache.get(key) is None
    cache, key, path = _stored(tmp_path / "b")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros((2, 3)))
    _rewrite_member(path, "emb.npy", buf.getvalue())
    assert cache.get(key) is None


def test_entry_of_another_key_is_a_miss(tmp_path: Path) -> None:
    cache, key, path = _stored(tmp_path)
    other = cache.key({"clip": "b"})
    dest = cache._path(other)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(path.read_bytes())  # a valid entry, copied under another key's name
    assert cache.get(other) is None
    with pytest.raises(ValueError, match="another key"):
        decode_entry(other, path.read_bytes())


def test_entry_of_the_previous_format_is_a_miss(tmp_path: Path) -> None:
    cache = OutputCache(tmp_path)
    key = cache.key({"clip": "a"})
    path = cache._path(key)
    path.parent.mkdir(parents=True)
    blob = json.dumps({"x": 1.5}).encode()
    np.savez(path, __values__=np.frombuffer(blob, dtype=np.uint8))  # what format 1 wrote
    assert cache.get(key) is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mutation_is_a_miss_or_the_original(tmp_path: Path, data: st.DataObject) -> None:
    """Random byte flips, truncations and insertions: get() returns None or exactly what was
    stored (a flip in bytes the zip reader ignores), never another output, never raises."""
    key = OutputCache.key({"clip": "a"})
    good = encode_entry(key, OUT)
    blob = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, max(0, len(blob) - 1)))
        if op == "flip" and blob:
            blob[i] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del blob[i:i + data.draw(st.integers(1, 64))]
        else:
            blob[i:i] = data.draw(st.binary(min_size=1, max_size=16))
    path = tmp_path / "cache" / key[:2] / f"{key}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(blob))
    got = OutputCache(tmp_path / "cache").get(key)
    assert got is None or _same(got, OUT)


def test_directory_or_fifo_in_place_of_an_entry(tmp_path: Path) -> None:
    cache = OutputCache(tmp_path)
    key = cache.key({"clip": "a"})
    path = cache._path(key)
    (path / "inner").mkdir(parents=True)
    (path / "inner" / "f").write_text("x")
    assert cache.get(key) is None  # never opened
    cache.put(key, OUT)  # the folder in the way is removed
    assert path.is_file() and _same(cache.get(key), OUT)
    key2 = cache.key({"clip": "b"})
    fifo = cache._path(key2)
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    assert cache.get(key2) is None  # a FIFO is not read (it would block)
    cache.put(key2, OUT)
    assert fifo.is_file() and _same(cache.get(key2), OUT)


def test_file_in_place_of_a_shard_folder(tmp_path: Path) -> None:
    cache = OutputCache(tmp_path)
    key = cache.key({"clip": "a"})
    shard = tmp_path / key[:2]
    shard.write_text("not a folder")
    assert cache.get(key) is None
    cache.put(key, OUT)
    assert shard.is_dir() and _same(cache.get(key), OUT)


def test_file_in_place_of_the_cache_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("oops")
    with pytest.raises(TasBenchError, match="cache folder is not a folder") as ei:
        OutputCache(blocker)
    assert str(blocker) in str(ei.value) and "--no-cache" in str(ei.value)
    with pytest.raises(TasBenchError, match="cannot create the cache folder"):
        OutputCache(blocker / "sub")
    assert blocker.read_text() == "oops"  # untouched


def test_unwritable_entry_is_an_error_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tas_bench.runtime.cache as cache_mod

    def full(path, data):  # noqa: ANN001, ANN202
        raise OSError(28, "No space left on device")

    cache = OutputCache(tmp_path)
    monkeypatch.setattr(cache_mod, "write_bytes_atomic", full)
    key = cache.key({"clip": "a"})
    with pytest.raises(TasBenchError, match="cannot write cache entry .No space left") as ei:
        cache.put(key, OUT)
    assert key in str(ei.value)


def test_entries_are_fsynced_before_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:  # noqa: ANN001
        events.append(("replace", str(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    cache, key, path = _stored(tmp_path)
    tmp_name = next(p for op, p in events if op == "replace")
    assert events.index(("fsync", tmp_name)) < events.index(("replace", tmp_name))
    assert ("fsync", str(path.parent)) in events[events.index(("replace", tmp_name)):]  # the folder too


# ---- end to end: a scoring run over a damaged cache --------------------------------------

@pytest.fixture
def scored(tmp_path: Path) -> tuple[Path, Path, Path, str]:
    data, pred, cache = tmp_path / "data", tmp_path / "pred", tmp_path / "cache"
    recs = make_dataset(data, n=4, seconds=0.25)
    write_predictions(pred, data, recs, mode="noisy")
    CALLS.clear()
    score(ScoreOptions(data=data, pred=pred, out=tmp_path / "res0", evaluators=[Counting.name],
                       cache_dir=cache, progress=False))
    assert sum(CALLS.values()) == 4
    return data, pred, cache, (tmp_path / "res0" / "per_clip.csv").read_text()


def _rescore(tmp_path: Path, scored, name: str):  # noqa: ANN001, ANN202
    data, pred, cache, _ = scored
    CALLS.clear()
    s = score(ScoreOptions(data=data, pred=pred, out=tmp_path / name, evaluators=[Counting.name],
                           cache_dir=cache, progress=False))
    return s, (tmp_path / name / "per_clip.csv").read_text()


@pytest.mark.parametrize("damage", ["forged value", "empty", "folder"])
def test_rescore_over_damaged_entries_recomputes_them(tmp_path: Path, scored, damage: str) -> None:  # noqa: ANN001
    cache, first = scored[2], scored[3]
    entries = sorted(cache.rglob("*.npz"))
    assert len(entries) == 4
    for p in entries:
        if damage == "forged value":  # the attack of the issue: per_clip.csv would change
            with zipfile.ZipFile(p) as zf:
                values = json.loads(zf.read("__values__.json"))
            _rewrite_member(p, "__values__.json", json.dumps({k: 0.123 for k in values}).encode())
        elif damage == "empty":  # what a power loss after an un-fsynced rename leaves
            p.write_bytes(b"")
        else:
            p.unlink()
            p.mkdir()
    s, again = _rescore(tmp_path, scored, "res1")
    assert s.cache_hits == 0 and s.cache_misses == 4 and sum(CALLS.values()) == 4
    assert again == first  # the damaged entries were not served
    s, again = _rescore(tmp_path, scored, "res2")  # and they were replaced by good ones
    assert s.cache_hits == 4 and sum(CALLS.values()) == 0 and again == first


def test_cli_file_in_place_of_the_cache_folder(tmp_path: Path, scored, capsys) -> None:  # noqa: ANN001
    from tas_bench.pipeline.cli import main

    data, pred, _, _ = scored
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    CALLS.clear()
    rc = main(["score", "--data", str(data), "--pred", str(pred), "--out", str(tmp_path / "r"),
               "--evaluators", Counting.name, "--cache-dir", str(blocker), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and str(blocker) in err
    assert "cache folder is not a folder" in err and len(err.strip().splitlines()) == 1
    assert sum(CALLS.values()) == 0 and not (tmp_path / "r" / "results.json").exists()
