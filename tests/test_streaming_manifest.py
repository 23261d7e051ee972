"""Streaming manifest writes (issue 11 item 5): the simulator writes each clip's record as it
is made and holds none (memory flat in N), the bytes are those of the former all-at-once
writer, and a run killed mid-write (SIGKILL) leaves a folder that nothing accepts as a
dataset, which the next run cleans and completes."""

from __future__ import annotations

import hashlib
import importlib
import json
import signal
import subprocess
import sys
import textwrap
import weakref
from pathlib import Path

import pytest
from simdata import tiny_corpus

from tas_bench.data.manifest import (
    MANIFEST_NAME,
    ManifestWriter,
    dataset_fingerprint,
    load_dataset,
    write_manifest,
)
from tas_bench.data.shards import merge_shards
from tas_bench.data.simulate import simulate_dataset
from tas_bench.data.validate import validate_dataset
from tas_bench.pipeline import cli
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import TMP_MARK

simmod = importlib.import_module("tas_bench.data.simulate")
KW = dict(n_train=5, n_val=2, n_test=4, duration=0.5, seed=5, progress=False)


class Rec(dict):
    """A manifest record that can be watched with a weak reference (records hold no reference
    cycles, so one is freed as soon as nothing refers to it; no gc.collect needed)."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("src"))


def _temps(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if TMP_MARK in p.name]


def test_bytes_equal_the_former_all_at_once_writer(tmp_path):
    recs = [{"id": "b", "z": 1, "a": "é"}, {"id": "a", "list": [1.5, None]}]
    write_manifest(tmp_path, recs)
    former = "\n".join(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in recs) + "\n"
    assert (tmp_path / MANIFEST_NAME).read_bytes() == former.encode("utf-8")
    with ManifestWriter(tmp_path, "x.jsonl") as w:
        for r in recs:
            w.add(r)
    assert w.count == 2 and w.bytes_written == len(former.encode("utf-8"))
    assert w.sha256 == hashlib.sha256(former.encode("utf-8")).hexdigest()
    write_manifest(tmp_path / "empty", [])
    assert (tmp_path / "empty" / MANIFEST_NAME).read_bytes() == b"\n"  # as before
    with pytest.raises(ValueError, match="newline"), ManifestWriter(tmp_path, "y.jsonl") as w:
        w.add_line('{"a": 1}\n{"b": 2}')
    assert not (tmp_path / "y.jsonl").exists() and _temps(tmp_path) == []


def test_writer_holds_no_record_and_publishes_only_at_the_end(tmp_path):
    refs: list[weakref.ref] = []

    def records():
        for k in range(20):
            assert sum(r() is not None for r in refs) <= 1  # at most the one being written
            assert not (tmp_path / MANIFEST_NAME).exists()  # nothing published mid-write
            rec = Rec(id=f"c{k}", payload="x" * 1000)
            refs.append(weakref.ref(rec))
            yield rec

    write_manifest(tmp_path, records())
    assert len((tmp_path / MANIFEST_NAME).read_text().splitlines()) == 20


def test_simulator_holds_no_record(tmp_path, corpus, monkeypatch):
    """Memory flat in N, checked on the structure: when clip k is made, every record before
    clip k-1 has been released (the former simulator kept all of them until the end)."""
    refs: list[weakref.ref] = []
    real = simmod._work

    def watched(job):
        assert sum(r() is not None for r in refs) <= 1, "the simulator keeps earlier records"
        rec, sha = real(job)
        rec = Rec(rec)
        refs.append(weakref.ref(rec))
        return rec, sha

    monkeypatch.setattr(simmod, "_work", watched)
    s = simulate_dataset(tmp_path / "d", corpus=corpus, workers=1, **KW)
    assert len(refs) == s.n_clips == 11
    assert s.fingerprint == dataset_fingerprint(tmp_path / "d")  # computed while writing


def test_windowed_worker_pool_gives_the_same_bytes(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(simmod, "JOB_WINDOW", 3)  # several windows of jobs
    a = simulate_dataset(tmp_path / "a", corpus=corpus, workers=2, **KW)
    b = simulate_dataset(tmp_path / "b", corpus=corpus, workers=1, **KW)
    assert a.fingerprint == b.fingerprint == dataset_fingerprint(tmp_path / "a")


def test_interrupted_in_process_leaves_no_manifest_and_no_temp(tmp_path, corpus, monkeypatch):
    real, calls = simmod._work, {"n": 0}

    def dying(job):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(simmod, "_work", dying)
    with pytest.raises(KeyboardInterrupt):
        simulate_dataset(tmp_path / "d", corpus=corpus, **KW)
    assert not (tmp_path / "d" / MANIFEST_NAME).exists()
    assert _temps(tmp_path / "d") == []


_KILLER = textwrap.dedent("""
    import importlib, os, signal, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from simdata import tiny_corpus
    sim = importlib.import_module("tas_bench.data.simulate")
    real, calls = sim._work, {{"n": 0}}
    def dying(job):
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(job)
    sim._work = dying
    shard = {shard!r}
    sim.simulate_dataset({out!r}, corpus=tiny_corpus(Path({src!r})), workers=1,
                         shard=shard, **{kw!r})
""")


def _run_killed(out: Path, src: Path, shard=None) -> None:
    code = _KILLER.format(tests=str(Path(__file__).parent), out=str(out), src=str(src),
                          shard=shard, kw=KW)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


def test_sigkill_mid_write_leaves_nothing_accepted(tmp_path, corpus, capsys):
    out = tmp_path / "d"
    simulate_dataset(out, corpus=corpus, **KW)  # a finished dataset, then a rerun killed
    clean = dataset_fingerprint(out)
    _run_killed(out, tmp_path / "src")
    assert not (out / MANIFEST_NAME).exists()
    assert any(p.name.startswith(f".{MANIFEST_NAME}{TMP_MARK}") for p in _temps(out)), \
        "killed after the manifest was started (5 records streamed)"
    with pytest.raises(TasBenchError, match="no manifest.jsonl"):
        validate_dataset(out)
    with pytest.raises(TasBenchError, match="no manifest.jsonl"):
        load_dataset(out)
    assert cli.main(["validate", str(out)]) == 2
    assert cli.main(["score", "--data", str(out), "--pred", str(tmp_path), "--out",
                     str(tmp_path / "res"), "--evaluators", "signal", "--no-progress"]) == 2
    capsys.readouterr()
    # the next run sweeps what the killed one left and gives the finished dataset's bytes
    again = simulate_dataset(out, corpus=corpus, **KW)
    assert _temps(out) == [] and again.fingerprint == clean


def test_sigkill_of_a_shard_is_refused_by_the_merge(tmp_path, corpus):
    shards = [simulate_dataset(tmp_path / "s", corpus=corpus, shard=(i, 2), **KW).out
              for i in range(2)]
    _run_killed(tmp_path / "s", tmp_path / "src", shard=(1, 2))  # shard 1 rerun, killed
    with pytest.raises(TasBenchError, match="not a finished shard: no shard.json"):
        merge_shards(shards, tmp_path / "m")
    assert not (tmp_path / "m" / MANIFEST_NAME).exists()
