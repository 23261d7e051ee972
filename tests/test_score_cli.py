"""`tas-bench score` end to end through the CLI: exit codes, kill -9 + restart, two processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from datagen import make_dataset, write_predictions

from tas_bench.pipeline.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _env(extra_path: Path | None = None) -> dict[str, str]:
    paths = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": "1"}


@pytest.fixture
def data_pred(tmp_path: Path) -> tuple[Path, Path]:
    data, pred = tmp_path / "data", tmp_path / "pred"
    recs = make_dataset(data, n=6, seconds=1.0)
    write_predictions(pred, data, recs, mode="mono")
    return data, pred


def test_score_cli_success_and_user_errors(data_pred, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    data, pred = data_pred
    args = ["score", "--data", str(data), "--pred", str(pred), "--out", str(tmp_path / "res"),
            "--evaluators", "signal", "cues", "--no-progress", "--cache-dir", str(tmp_path / "c")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "scored 6/6 clip(s)" in out and "stft" in out
    doc = json.loads((tmp_path / "res" / "results.json").read_text())
    assert doc["metrics"]["lr_correct_ref"]["mean"] == 1.0  # the reference localises correctly
    assert doc["metrics"]["snr"]["higher_is_better"] is True
    # explicit evaluator that cannot run -> one line, exit 2
    assert main(["score", "--data", str(data), "--pred", str(pred), "--out", str(tmp_path / "r2"),
                 "--evaluators", "generation", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot run" in err and "weights" in err
    # default set: generation is skipped with the reason, not an error
    assert main(["score", "--data", str(data), "--pred", str(pred), "--out", str(tmp_path / "r3"),
                 "--no-progress", "--cache-dir", str(tmp_path / "c")]) == 0
    doc = json.loads((tmp_path / "r3" / "results.json").read_text())
    assert "generation" in doc["skipped"] and "weights" in doc["skipped"]["generation"]
    # an invalid prediction -> exit 1, listed in results
    (pred / "clip000.wav").write_bytes(b"RIFF0000WAVE")
    assert main(args[:6] + [str(tmp_path / "r4")] + args[7:]) == 1
    doc = json.loads((tmp_path / "r4" / "results.json").read_text())
    assert doc["invalid"][0]["id"] == "clip000"
    assert main(["score", "--data", str(tmp_path / "nope"), "--pred", str(pred), "--out", "x"]) == 2


KILL_PLUGIN = textwrap.dedent('''
    import os
    import signal
    from evaluators.registry import EVALUATORS
    from evaluators.signal import SignalEvaluator

    class KillSignal(SignalEvaluator):
        """signal, one clip a batch; kills its own process (SIGKILL) when batch number
        $KILL_AT_BATCH starts, so a run dies at a known point without any timing."""
        name = "kill-signal"
        batch_size = 1
        calls = 0
        def process_batch(self, batch):
            KillSignal.calls += 1
            if KillSignal.calls == int(os.environ.get("KILL_AT_BATCH", "0")):
                os.kill(os.getpid(), signal.SIGKILL)
            return super().process_batch(batch)

    EVALUATORS.register("kill-signal", KillSignal)
''')


def _score_proc(data: Path, pred: Path, out: Path, cache: Path) -> list[str]:
    code = ("import sys, killplug; from tas_bench.pipeline.cli import main; "
            f"sys.exit(main(['score', '--data', {str(data)!r}, '--pred', {str(pred)!r}, '--out', "
            f"{str(out)!r}, '--evaluators', 'kill-signal', '--no-progress', '--cache-dir', {str(cache)!r}]))")
    return [sys.executable, "-c", code]


def _plant_orphan(folder: Path, final_name: str, pid: int) -> Path:
    """A temporary file as fileio.atomic_path names it, left by the (dead) process ``pid``."""
    from tas_bench.runtime.fileio import TMP_MARK, host_tag

    folder.mkdir(parents=True, exist_ok=True)
    suffix = Path(final_name).suffix
    p = folder / f".{final_name}{TMP_MARK}{host_tag()}.{pid}.k1ll3d{suffix}"
    p.write_bytes(b"half-written")
    return p


def _temp_files(*folders: Path) -> list[Path]:
    return [p for f in folders if f.exists() for p in f.rglob("*") if ".tas-tmp." in p.name]


def test_sigkill_then_restart_gives_identical_results(data_pred, tmp_path: Path) -> None:  # noqa: ANN001
    """A run killed after two clips, plus the temporary files a kill mid-write leaves in the
    cache, predictions and results folders: the restart sweeps them, reuses the two cached
    clips and writes results byte-identical to a clean run (no timing involved)."""
    data, pred = data_pred
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "killplug.py").write_text(KILL_PLUGIN)
    env = _env(tmp_path / "plug")
    cache, res = tmp_path / "cache", tmp_path / "res"
    proc = subprocess.Popen(_score_proc(data, pred, res, cache), env={**env, "KILL_AT_BATCH": "3"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert len(list(cache.rglob("*.npz"))) == 2  # clips 1 and 2 were stored, then the kill
    assert not (res / "results.json").exists()  # nothing half-written under the final name
    # what a SIGKILL during a write leaves (the killed process's pid is certainly dead)
    entry_dir = next(cache.rglob("*.npz")).parent
    orphans = [_plant_orphan(entry_dir, "ab" * 32 + ".npz", proc.pid),
               _plant_orphan(pred, "clip003.wav", 999_999_999),
               _plant_orphan(res, "per_clip.csv", 999_999_999),
               _plant_orphan(res, "results.json", 999_999_999)]
    rerun = subprocess.run(_score_proc(data, pred, res, cache), env=env, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr  # the planted prediction temp is not "extra"
    assert "cache hits 2," in rerun.stdout
    assert not any(p.exists() for p in orphans)
    assert not _temp_files(cache, pred, res)
    clean = subprocess.run(_score_proc(data, pred, tmp_path / "clean", tmp_path / "cache2"),
                           env=env, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr
    assert (res / "per_clip.csv").read_bytes() == (tmp_path / "clean" / "per_clip.csv").read_bytes()
    a = json.loads((res / "results.json").read_text())
    b = json.loads((tmp_path / "clean" / "results.json").read_text())
    assert a["metrics"] == b["metrics"] and a["invalid"] == b["invalid"] == []


def test_live_writers_temp_files_are_kept(data_pred, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Only the temporary files of dead writers are swept: one of a running process (here this
    test's own pid) stays."""
    data, pred = data_pred
    cache = tmp_path / "c"
    (cache / "ab").mkdir(parents=True)
    live = _plant_orphan(cache / "ab", "ab" * 32 + ".npz", os.getpid())
    assert main(["score", "--data", str(data), "--pred", str(pred), "--out", str(tmp_path / "r"),
                 "--evaluators", "signal", "--no-progress", "--cache-dir", str(cache)]) == 0
    assert live.exists()


def test_two_processes_with_torchrun_equal_one(data_pred, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred = data_pred
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.fail(f"torchrun not found next to {sys.executable} (torch is a dependency)")
    common = ["--data", str(data), "--pred", str(pred), "--evaluators", "signal", "cues", "--no-progress"]
    subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "tas_bench.pipeline.cli", "score", *common,
                    "--out", str(tmp_path / "two"), "--cache-dir", str(tmp_path / "c2")],
                   env=_env(), check=True, capture_output=True, timeout=300)
    # the single-process run in the same environment (thread count can change the last bits)
    subprocess.run([sys.executable, "-m", "tas_bench.pipeline.cli", "score", *common, "--out", str(tmp_path / "one"),
                    "--cache-dir", str(tmp_path / "c1")], env=_env(), check=True, capture_output=True)
    assert (tmp_path / "one" / "per_clip.csv").read_bytes() == (tmp_path / "two" / "per_clip.csv").read_bytes()
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert one["metrics"] == two["metrics"]
    # both workers filled the cache: 6 clips x 2 evaluators, no more
    assert len(list((tmp_path / "c2").rglob("*.npz"))) == 12
