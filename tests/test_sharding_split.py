"""Multi-process work is split, not repeated: each scoring shard / process computes exactly its
share of the clips (counted by evaluator calls per process and cache entries per shard), the
assembling run computes nothing, and each training process draws its own windows.

The evaluator here logs every clip it computes, with the process id and torch's RANK, to the
file named by ``TAS_SPLIT_LOG``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest
from datagen import make_dataset, write_predictions

from tas_bench.pipeline.scoring import ScoreOptions, score

ROOT = Path(__file__).resolve().parent.parent

PLUGIN = textwrap.dedent('''
    import os

    from evaluators.base import ClipOutput, Evaluator, MetricSpec
    from evaluators.registry import EVALUATORS


    class SplitLog(Evaluator):
        """Per clip: the prediction's peak; logs "rank pid clip" for every clip computed."""

        name = "test-split-log"
        version = "0.1"
        metrics = (MetricSpec("peak", False, "", "max |x|"),)
        batch_size = 2

        def config(self):
            return {"sample_rate": self.sample_rate}

        def process_batch(self, batch):
            with open(os.environ["TAS_SPLIT_LOG"], "a", encoding="utf-8") as f:
                for b in batch:
                    f.write(f"{os.environ.get('RANK', '-')} {os.getpid()} {b.clip.id}\\n")
            return [ClipOutput({"peak": float(abs(b.pred).max())}) for b in batch]


    if "test-split-log" not in EVALUATORS:
        EVALUATORS.register("test-split-log", SplitLog)
''')

CLI_RUNNER = "import sys, splitplug; from tas_bench.pipeline.cli import main; sys.exit(main(sys.argv[1:]))\n"

exec(compile(PLUGIN, "splitplug", "exec"), {"__name__": "splitplug"})  # register in this process


def _log(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines()]  # type: ignore[misc]


def _entries(cache: Path) -> set[str]:
    return {p.name for p in cache.rglob("*.npz")} if cache.exists() else set()


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, list[str], Path]:
    data, pred = tmp_path / "data", tmp_path / "pred"
    recs = make_dataset(data, n=7, seconds=0.5)
    write_predictions(pred, data, recs, mode="noisy")
    log = tmp_path / "calls.log"
    monkeypatch.setenv("TAS_SPLIT_LOG", str(log))
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "splitplug.py").write_text(PLUGIN)
    (tmp_path / "plug" / "run_cli.py").write_text(CLI_RUNNER)
    return data, pred, [r["id"] for r in recs], log


def _opts(data: Path, pred: Path, cache: Path, **kw: object) -> ScoreOptions:
    return ScoreOptions(data=data, pred=pred, evaluators=["test-split-log"], cache_dir=cache,
                        progress=False, **kw)


def test_each_shard_computes_only_its_share(setup, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred, ids, log = setup
    cache = tmp_path / "cache"
    done: list[str] = []
    for i in range(3):
        before_calls, before_entries = len(_log(log)), _entries(cache)
        s = score(_opts(data, pred, cache, out=None, shard=(i, 3)))
        calls = [c for _, _, c in _log(log)[before_calls:]]
        share = ids[i::3]  # clip j of the manifest's split goes to shard j mod N
        assert calls == share, (i, calls)
        assert s.n_clips == len(share) and s.n_valid == len(share) and s.results_path is None
        assert len(_entries(cache) - before_entries) == len(share)  # only its share is cached
        assert s.cache_misses == len(share) and s.cache_hits == 0
        done += calls
    assert sorted(done) == sorted(ids)  # together: every clip exactly once
    n_calls = len(_log(log))
    s = score(_opts(data, pred, cache, out=tmp_path / "res"))
    assert len(_log(log)) == n_calls  # assembling computes nothing
    assert s.cache_hits == len(ids) and s.metrics["peak"]["n"] == len(ids)
    # a shard run again finds its share in the cache
    score(_opts(data, pred, cache, out=None, shard=(1, 3)))
    assert len(_log(log)) == n_calls


def _env(plug: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(plug)]),
            "OMP_NUM_THREADS": "1"}


def test_shard_processes_from_the_cli_split_the_clips(setup, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred, ids, log = setup
    plug, cache = tmp_path / "plug", tmp_path / "cache"
    common = ["score", "--data", str(data), "--pred", str(pred), "--evaluators", "test-split-log",
              "--no-progress", "--cache-dir", str(cache)]
    procs = [subprocess.Popen([sys.executable, str(plug / "run_cli.py"), *common, "--shard",
                               f"{i}/2"], env=_env(plug), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        assert "shard done" in out
    by_pid: dict[str, list[str]] = defaultdict(list)
    for _, pid, cid in _log(log):
        by_pid[pid].append(cid)
    assert sorted(by_pid) == sorted(str(p.pid) for p in procs)
    for i, p in enumerate(procs):
        assert by_pid[str(p.pid)] == ids[i::2], i  # each process computed only its share
    assert len(_entries(cache)) == len(ids)
    r = subprocess.run([sys.executable, str(plug / "run_cli.py"), *common, "--out",
                        str(tmp_path / "res")], env=_env(plug), cwd=tmp_path,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(_log(log)) == len(ids)  # the assembling run computed nothing


def _torchrun() -> Path:
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.fail(f"torchrun not found next to {sys.executable} (it ships with torch)")
    return torchrun


def test_torchrun_ranks_each_score_their_share(setup, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred, ids, log = setup
    plug = tmp_path / "plug"
    r = subprocess.run([str(_torchrun()), "--standalone", "--nproc_per_node", "2",
                        str(plug / "run_cli.py"), "score", "--data", str(data), "--pred", str(pred),
                        "--evaluators", "test-split-log", "--no-progress", "--cache-dir",
                        str(tmp_path / "cache"), "--out", str(tmp_path / "res")],
                       env=_env(plug), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    by_rank: dict[str, list[str]] = defaultdict(list)
    pids: dict[str, set[str]] = defaultdict(set)
    for rank, pid, cid in _log(log):
        by_rank[rank].append(cid)
        pids[rank].add(pid)
    assert by_rank == {"0": ids[0::2], "1": ids[1::2]}  # nothing twice, nothing by the assembly
    assert len(pids["0"]) == len(pids["1"]) == 1 and pids["0"] != pids["1"]
    assert (tmp_path / "res" / "results.json").is_file()


TRAIN_RUNNER = textwrap.dedent('''
    import hashlib, os, sys

    from baselines.pseudobinaural.data import WindowSampler

    _batch = WindowSampler.batch


    def logged(self, step):
        mix, diff, prompts = _batch(self, step)
        digest = hashlib.sha256(mix.tobytes() + diff.tobytes()).hexdigest()[:16]
        with open(os.environ["TAS_SPLIT_LOG"], "a", encoding="utf-8") as f:
            f.write(f"{os.environ.get('RANK', '-')} {self.rank} {step} {digest}\\n")
        return mix, diff, prompts


    WindowSampler.batch = logged
    from tas_bench.pipeline.cli import main

    sys.exit(main(sys.argv[1:]))
''')


def test_torchrun_training_ranks_draw_their_own_windows(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from test_systems_api import make_dataset as make_train_dataset

    data = make_train_dataset(tmp_path / "data", n_train=4, n_val=1, n_test=1)
    log = tmp_path / "windows.log"
    monkeypatch.setenv("TAS_SPLIT_LOG", str(log))
    (tmp_path / "train_log.py").write_text(TRAIN_RUNNER)
    steps = 4
    r = subprocess.run([str(_torchrun()), "--standalone", "--nproc_per_node", "2",
                        str(tmp_path / "train_log.py"), "train", "pseudobinaural", "--data",
                        str(data), "--out", str(tmp_path / "run"), "--preset", "tiny", "--steps",
                        str(steps), "--no-progress"],
                       env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    batches: dict[str, dict[int, str]] = defaultdict(dict)
    for rank, sampler_rank, step, digest in _log(log):
        assert sampler_rank == rank  # process r draws from the sampler of rank r
        assert int(step) not in batches[rank], "a step drawn twice"
        batches[rank][int(step)] = digest
    assert sorted(batches) == ["0", "1"]
    for rank in ("0", "1"):
        assert sorted(batches[rank]) == list(range(steps))
    # every step, the two processes trained on different windows (each its own share)
    assert all(batches["0"][s] != batches["1"][s] for s in range(steps))
    assert hashlib.sha256((tmp_path / "run" / "model.safetensors").read_bytes()).hexdigest()
