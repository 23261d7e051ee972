"""Generation runner and the train/register/generate/spatialize commands (CLI, bad input)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_check import one_line_error as _one_line_error
from cli_check import run_cli as _cli
from test_systems_api import make_dataset

from tas_bench.runtime.errors import TasBenchError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("gen") / "data", n_train=4, n_val=1, n_test=10)


def test_generate_mono_mono(data: Path, tmp_path: Path) -> None:
    from tas_bench.data.manifest import load_dataset
    from tas_bench.pipeline.generate import generate_predictions

    pred = tmp_path / "pred"
    s = generate_predictions("mono-mono", data, pred, split="test", batch_size=3, progress=False)
    assert s["generated"] == 10 and s["skipped"] == 0
    meta = json.loads((pred / "system.json").read_text())
    assert meta["system"]["name"] == "mono-mono" and meta["dataset_fingerprint"]
    ds = load_dataset(data)
    for clip in ds.split("test"):
        y, sr = sf.read(pred / f"{clip.id}.wav", always_2d=True)
        ref, _ = sf.read(ds.audio_path(clip), always_2d=True)
        assert sr == 16000 and y.shape == ref.shape
        np.testing.assert_allclose(y[:, 0] + y[:, 1], ref[:, 0] + ref[:, 1], atol=1e-6)
    again = generate_predictions("mono-mono", data, pred, progress=False)
    assert again["generated"] == 0 and again["skipped"] == 10
    # a broken file under the final name (e.g. copied in by hand) is regenerated
    (pred / "clip014.wav").write_bytes(b"RIFF")
    assert generate_predictions("mono-mono", data, pred, progress=False)["generated"] == 1
    with pytest.raises(TasBenchError, match="another system revision"):
        generate_predictions("pseudobinaural-demo", data, pred, progress=False)
    with pytest.raises(TasBenchError, match="unknown split"):
        generate_predictions("mono-mono", data, pred, split="dev", progress=False)
    with pytest.raises(TasBenchError, match="unknown system 'nope'; known: .*mono-mono"):
        generate_predictions("nope", data, tmp_path / "p2", progress=False)


_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from baselines.mono_mono import MonoMono
orig = MonoMono._spatialize
def slow(self, mono, prompts):
    time.sleep(0.3)  # test-only slow-down so the parent can kill mid-run
    return orig(self, mono, prompts)
MonoMono._spatialize = slow
from tas_bench.pipeline.generate import generate_predictions
generate_predictions("mono-mono", {data!r}, {out!r}, batch_size=1, progress=False)
"""


def test_generate_resumes_after_kill(data: Path, tmp_path: Path) -> None:
    from tas_bench.pipeline.generate import generate_predictions

    pred = tmp_path / "pred"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=str(ROOT), data=str(data),
                                                                 out=str(pred))])
    deadline = time.time() + 120
    while len(list(pred.glob("clip*.wav"))) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(pred.glob("clip*.wav"))
    assert 2 <= len(done) < 10
    for p in done:  # atomic writes: every file under a final name is complete
        assert sf.info(str(p)).frames == 16000
    s = generate_predictions("mono-mono", data, pred, progress=False)
    assert s["skipped"] == len(done) and s["generated"] == 10 - len(done)
    assert not [p for p in pred.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_cli_train_register_generate_spatialize(data: Path, tmp_path: Path, capsys,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAS_BENCH_HOME", str(tmp_path / "home"))
    run = tmp_path / "run"
    rc, out, err = _cli(["train", "pseudobinaural", "--data", str(data), "--out", str(run),
                         "--preset", "tiny", "--steps", "10", "--threads", "1", "--no-progress"],
                        capsys)
    assert rc == 0 and "register it with" in out, err
    rc, out, _ = _cli(["register", "mine", str(run)], capsys)
    assert rc == 0 and "registered mine" in out
    rc, out, _ = _cli(["ls", "systems"], capsys)
    assert rc == 0 and "mine" in out and "mono-mono" in out and "pseudobinaural-demo" in out
    rc, out, _ = _cli(["generate", "--system", "mine", "--data", str(data), "--out",
                       str(tmp_path / "pred"), "--no-progress"], capsys)
    assert rc == 0 and "10 generated" in out
    assert json.loads((tmp_path / "pred" / "system.json").read_text())["system"]["name"] == "mine"
    mono = tmp_path / "mono.wav"
    sf.write(mono, (np.random.default_rng(0).standard_normal(8000) * 0.1).astype(np.float32), 8000)
    rc, out, _ = _cli(["spatialize", "--system", "mine", "--input", str(mono), "--prompt",
                       "The noise is located right, front, above, 2m away.", "--out",
                       str(tmp_path / "o.wav")], capsys)
    y, sr = sf.read(tmp_path / "o.wav", always_2d=True)
    assert rc == 0 and sr == 16000 and y.shape == (16000, 2)
    rc, out, _ = _cli(["spatialize", "--system", "mono-mono", "--input", str(mono), "--out",
                       str(tmp_path / "mm.wav")], capsys)
    y, sr = sf.read(tmp_path / "mm.wav", always_2d=True)
    assert rc == 0 and sr == 8000 and np.allclose(y[:, 0], y[:, 1])


def test_cli_bad_inputs(data: Path, tmp_path: Path, capsys) -> None:
    nan = tmp_path / "nan.wav"
    x = np.zeros(4000, np.float32)
    x[10] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(4000, np.float32), 16000)
    trunc = tmp_path / "trunc.wav"
    sf.write(trunc, np.zeros(4000, np.float32), 16000)
    trunc.write_bytes(trunc.read_bytes()[:30])
    rc, _, err = _cli(["spatialize", "--system", "nope", "--input", str(silent), "--out",
                       str(tmp_path / "o.wav")], capsys)
    _one_line_error(rc, err, "known: ")
    rc, _, err = _cli(["spatialize", "--system", "pseudobinaural-demo", "--input", str(nan),
                       "--out", str(tmp_path / "o.wav")], capsys)
    _one_line_error(rc, err, "NaN")
    rc, _, err = _cli(["spatialize", "--system", "pseudobinaural-demo", "--input", str(trunc),
                       "--out", str(tmp_path / "o.wav")], capsys)
    _one_line_error(rc, err, "trunc.wav")
    rc, _, _ = _cli(["spatialize", "--system", "pseudobinaural-demo", "--input", str(silent),
                     "--prompt", "", "--out", str(tmp_path / "s.wav")], capsys)
    assert rc == 0 and not sf.read(tmp_path / "s.wav")[0].any()  # silence in, silence out
    rc, _, err = _cli(["train", "no-such-kind", "--data", str(data), "--out", str(tmp_path / "r")],
                      capsys)
    _one_line_error(rc, err, "trainable kinds")
    rc, _, err = _cli(["train", "pseudobinaural", "--data", str(tmp_path / "none"), "--out",
                       str(tmp_path / "r")], capsys)
    _one_line_error(rc, err, "not found")
    rc, _, err = _cli(["register", "x", str(tmp_path)], capsys)
    _one_line_error(rc, err, "run record")
    rc, _, err = _cli(["generate", "--system", "mono-mono", "--data", str(tmp_path / "none"),
                       "--out", str(tmp_path / "p")], capsys)
    _one_line_error(rc, err, "not found")


def test_cli_train_list_and_set(data: Path, tmp_path: Path, capsys) -> None:
    from tas_bench.pipeline.commands.train import parse_sets

    assert parse_sets(["lr=0.01", "film=false", "channels=[1,2]", "t5_path=/x/y", "name=a=b"]) == {
        "lr": 0.01, "film": False, "channels": [1, 2], "t5_path": "/x/y", "name": "a=b"}
    rc, out, _ = _cli(["train", "list"], capsys)
    assert rc == 0 and "pseudobinaural (system)" in out and "pseudobinaural-notext (system)" in out
    rc, _, err = _cli(["train", "pseudobinaural", "--data", str(data), "--out", str(tmp_path / "r"),
                       "--set", "lr"], capsys)
    _one_line_error(rc, err, "FIELD=VALUE")
    rc, _, err = _cli(["train", "pseudobinaural", "--data", str(data), "--out", str(tmp_path / "r"),
                       "--preset", "tiny", "--set", "chanels=[1,2,3,4,5]"], capsys)
    _one_line_error(rc, err, "unknown config field(s) ['chanels']")
    rc, out, err = _cli(["train", "pseudobinaural", "--data", str(data), "--out", str(tmp_path / "r"),
                         "--preset", "tiny", "--steps", "2", "--threads", "1", "--no-progress",
                         "--set", "lr=0.002", "--set", "val_every=2"], capsys)
    assert rc == 0, err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["lr"] == 0.002
