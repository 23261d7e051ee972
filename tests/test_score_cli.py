"""`tas-bench score` end to end through the CLI: exit codes, kill -9 + restart, two processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from datagen import make_dataset, write_predictions

from tas_bench.cli import main

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


SLOW_PLUGIN = textwrap.dedent('''
    import time
    from evaluators.registry import EVALUATORS
    from evaluators.signal import SignalEvaluator

    class SlowSignal(SignalEvaluator):
        name = "slow-signal"
        batch_size = 1
        def process_batch(self, batch):
            time.sleep(0.4)
            return super().process_batch(batch)

    EVALUATORS.register("slow-signal", SlowSignal)
''')


def _score_proc(data: Path, pred: Path, out: Path, cache: Path, plugin_dir: Path) -> list[str]:
    code = ("import sys, slowplug; from tas_bench.cli import main; "
            f"sys.exit(main(['score', '--data', {str(data)!r}, '--pred', {str(pred)!r}, '--out', "
            f"{str(out)!r}, '--evaluators', 'slow-signal', '--no-progress', '--cache-dir', {str(cache)!r}]))")
    return [sys.executable, "-c", code]


def test_sigkill_then_restart_gives_identical_results(data_pred, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred = data_pred
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "slowplug.py").write_text(SLOW_PLUGIN)
    env = _env(tmp_path / "plug")
    cache, res = tmp_path / "cache", tmp_path / "res"
    proc = subprocess.Popen(_score_proc(data, pred, res, cache, tmp_path / "plug"), env=env)
    deadline = time.time() + 60
    while time.time() < deadline and len(list(cache.rglob("*.npz"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_cached = len(list(cache.rglob("*.npz")))
    assert 2 <= n_cached < 6, "the run should have been killed part-way"
    assert not (res / "results.json").exists()  # nothing half-written under the final name
    subprocess.run(_score_proc(data, pred, res, cache, tmp_path / "plug"), env=env, check=True)
    subprocess.run(_score_proc(data, pred, tmp_path / "clean", tmp_path / "cache2", tmp_path / "plug"),
                   env=env, check=True)
    assert (res / "per_clip.csv").read_bytes() == (tmp_path / "clean" / "per_clip.csv").read_bytes()
    a = json.loads((res / "results.json").read_text())["metrics"]
    b = json.loads((tmp_path / "clean" / "results.json").read_text())["metrics"]
    assert a == b
    assert not [p for p in cache.rglob("*") if p.name.startswith(".")]  # no temp files left


def test_two_processes_with_torchrun_equal_one(data_pred, tmp_path: Path) -> None:  # noqa: ANN001
    data, pred = data_pred
    torchrun = Path(sys.executable).parent / "torchrun"
    if not torchrun.exists():
        pytest.fail(f"torchrun not found next to {sys.executable} (torch is a dependency)")
    common = ["--data", str(data), "--pred", str(pred), "--evaluators", "signal", "cues", "--no-progress"]
    subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "tas_bench.cli", "score", *common,
                    "--out", str(tmp_path / "two"), "--cache-dir", str(tmp_path / "c2")],
                   env=_env(), check=True, capture_output=True, timeout=300)
    # the single-process run in the same environment (thread count can change the last bits)
    subprocess.run([sys.executable, "-m", "tas_bench.cli", "score", *common, "--out", str(tmp_path / "one"),
                    "--cache-dir", str(tmp_path / "c1")], env=_env(), check=True, capture_output=True)
    assert (tmp_path / "one" / "per_clip.csv").read_bytes() == (tmp_path / "two" / "per_clip.csv").read_bytes()
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    two = json.loads((tmp_path / "two" / "results.json").read_text())
    assert one["metrics"] == two["metrics"]
    # both workers filled the cache: 6 clips x 2 evaluators, no more
    assert len(list((tmp_path / "c2").rglob("*.npz"))) == 12
