"""PseudoBinaural training: config checks, resume after kill -9, checkpoint refusal, FLAN-T5 path."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file
from test_systems_api import make_dataset, train_tiny

from tas_bench.runtime.errors import TasBenchError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("trdata") / "data", n_train=6, n_val=2, n_test=2)


def test_config_errors(tmp_path: Path) -> None:
    from baselines.pseudobinaural.config import resolve_config

    with pytest.raises(TasBenchError, match="unknown config field"):
        resolve_config("pseudobinaural", overrides={"chanels": [1, 2, 3, 4, 5]})
    with pytest.raises(TasBenchError, match="unknown preset"):
        resolve_config("pseudobinaural", overrides={"preset": "huge"})
    with pytest.raises(TasBenchError, match="kind"):
        resolve_config("tas")
    with pytest.raises(TasBenchError, match="expected int"):
        resolve_config("pseudobinaural", overrides={"steps": "ten"})
    with pytest.raises(TasBenchError, match="t5_path"):
        resolve_config("pseudobinaural", overrides={"text_encoder": "t5"})
    bad = tmp_path / "c.json"
    bad.write_text("{not json")
    with pytest.raises(TasBenchError, match="malformed config"):
        resolve_config("pseudobinaural", bad)
    good = tmp_path / "c.toml"
    good.write_text('preset = "tiny"\nsteps = 7\n')
    cfg = resolve_config("pseudobinaural-notext", good)
    assert cfg.steps == 7 and cfg.channels == [4, 8, 8, 16, 16] and cfg.use_text is False
    assert resolve_config("paper" and "pseudobinaural", overrides={"preset": "paper"}).channels == [
        64, 128, 256, 512, 512]


def test_run_folder_contents(data: Path, tmp_path: Path) -> None:
    rec = train_tiny(data, tmp_path / "run", steps=20)
    run = tmp_path / "run"
    for name in ("config.json", "data.json", "metrics.csv", "model.safetensors", "run.json"):
        assert (run / name).is_file(), name
    assert rec["steps"] == 20 and rec["resumed_from"] == 0
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert [int(r["step"]) for r in rows] == [10, 20]
    assert all(float(r["train_loss"]) > 0 for r in rows) and rows[-1]["val_loss"]
    ck = sorted((run / "checkpoints").iterdir())[-1]
    opt = load_file(str(ck / "optimizer.safetensors"))
    assert any(k.endswith(".exp_avg") for k in opt) and "rng.torch" in opt
    state = json.loads((ck / "state.json").read_text())
    assert state["step"] == 20 and state["optimizer"]["param_groups"][0]["lr"] == 1e-3
    # no pickle anywhere in the run
    assert not list(run.rglob("*.pt")) and not list(run.rglob("*.pkl")) and not list(run.rglob("*.bin"))
    # rerunning a finished run is a no-op that keeps the weights
    before = load_file(str(run / "model.safetensors"))
    train_tiny(data, run, steps=20)
    after = load_file(str(run / "model.safetensors"))
    assert all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)


def test_refuses_other_config_or_folder(data: Path, tmp_path: Path) -> None:
    train_tiny(data, tmp_path / "run", steps=10)
    with pytest.raises(TasBenchError, match="another config"):
        train_tiny(data, tmp_path / "run", steps=10, lr=0.01)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(TasBenchError, match="not a PseudoBinaural run"):
        train_tiny(data, tmp_path / "junk", steps=10)


_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from baselines.pseudobinaural import data as d
orig = d.WindowSampler.batch
def slow(self, step):
    time.sleep(0.05)  # test-only slow-down so the parent can kill mid-run
    return orig(self, step)
d.WindowSampler.batch = slow
from baselines.pseudobinaural.train import train_pseudobinaural
train_pseudobinaural("pseudobinaural", {data!r}, {out!r}, progress=False,
    overrides={{"preset": "tiny", "torch_threads": 1, "steps": 60, "checkpoint_every": 10,
               "val_every": 30}})
"""


def test_resume_after_kill_matches_uninterrupted(data: Path, tmp_path: Path) -> None:
    from tas_bench.runtime.runs import list_checkpoints

    over = {"steps": 60, "checkpoint_every": 10, "val_every": 30}
    train_tiny(data, tmp_path / "ref", **over)
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=str(ROOT), data=str(data),
                                                                 out=str(run))])
    deadline = time.time() + 120
    while not list_checkpoints(run) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "model.safetensors").exists()  # it really was cut short
    saved = int(json.loads((list_checkpoints(run)[-1] / "state.json").read_text())["step"])
    assert 10 <= saved < 60
    rec = train_tiny(data, run, **over)
    assert rec["resumed_from"] == saved and rec["steps"] == 60
    steps = [int(r["step"]) for r in csv.DictReader(open(run / "metrics.csv"))]
    assert steps == sorted(set(steps)) and steps[-1] == 60
    a = load_file(str(tmp_path / "ref" / "model.safetensors"))
    b = load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=0, atol=1e-6, err_msg=k)


def test_notext_variant_ignores_prompt(data: Path, tmp_path: Path) -> None:
    from baselines.pseudobinaural.system import load_checkpoint_dir

    train_tiny(data, tmp_path / "nt", kind="pseudobinaural-notext", steps=10)
    s = load_checkpoint_dir(tmp_path / "nt")
    assert s.card()["kind"] == "pseudobinaural-notext"
    m = (np.random.default_rng(0).standard_normal(12000) * 0.1).astype(np.float32)
    np.testing.assert_array_equal(s.spatialize(m, "left", 16000), s.spatialize(m, "right", 16000))


# ---------------------------------------------------------------- bad checkpoints


@pytest.fixture(scope="module")
def good_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("good") / "run"
    train_tiny(data, run, steps=10)
    return run


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(run, dst)
    return dst


def test_truncated_checkpoint(good_run: Path, tmp_path: Path) -> None:
    from baselines.pseudobinaural.system import load_checkpoint_dir

    run = _copy(good_run, tmp_path)
    p = run / "model.safetensors"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(TasBenchError, match="does not match run.json"):
        load_checkpoint_dir(run)
    (run / "run.json").unlink()
    with pytest.raises(TasBenchError, match="corrupted or truncated"):
        load_checkpoint_dir(run)
    p.write_bytes(b"")
    with pytest.raises(TasBenchError, match="corrupted or truncated"):
        load_checkpoint_dir(run)


def test_checkpoint_of_other_config_or_system(good_run: Path, tmp_path: Path) -> None:
    from baselines.pseudobinaural.system import load_checkpoint_dir

    run = _copy(good_run, tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "channels": [4, 8, 8, 16, 32]}))
    with pytest.raises(TasBenchError, match="another config"):
        load_checkpoint_dir(run)
    (run / "config.json").write_text(json.dumps({**cfg, "kind": "pseudobinaural-notext"}))
    with pytest.raises(TasBenchError, match="another system"):
        load_checkpoint_dir(run)
    (run / "config.json").write_text(json.dumps({**cfg, "kind": "tas"}))
    with pytest.raises(TasBenchError, match="another system kind"):
        load_checkpoint_dir(run, kinds=("pseudobinaural",))
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    from baselines.pseudobinaural.system import FORMAT, WHAT
    from tas_bench.runtime.runs import read_model

    with pytest.raises(TasBenchError, match="not a PseudoBinaural checkpoint"):
        read_model(tmp_path / "foreign.safetensors", fmt=FORMAT, what=WHAT)


def test_register_refusals(good_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from baselines.registry import load_system, register_run

    monkeypatch.setenv("TAS_BENCH_HOME", str(tmp_path / "home"))
    run = _copy(good_run, tmp_path)
    register_run("pb-a", run)
    # tampering after registration is caught when the system is loaded
    p = run / "model.safetensors"
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(TasBenchError, match="does not match"):
        load_system("pb-a")
    with pytest.raises(TasBenchError, match="does not match run.json"):
        register_run("pb-b", run)
    other = _copy(good_run, tmp_path / "o")
    rec = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**rec, "kind": "tas"}))
    with pytest.raises(TasBenchError, match="another system kind"):
        register_run("pb-c", other)
    with pytest.raises(TasBenchError, match="run record"):
        register_run("pb-d", tmp_path)
    with pytest.raises(TasBenchError, match="not found"):
        register_run("pb-e", tmp_path / "nope")


# ---------------------------------------------------------------- FLAN-T5 from a local folder


def _tiny_t5(folder: Path) -> Path:
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    words = ["<pad>", "</s>", "<unk>", "the", "noise", "is", "located", "left", "right", "front",
             "above", ",", ".", "2m", "away"]
    tok = tokenizers.Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>",
                                                pad_token="<pad>", eos_token="</s>")
    cfg = transformers.T5Config(vocab_size=32, d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                num_heads=2, decoder_start_token_id=0)
    import torch

    torch.manual_seed(0)
    transformers.T5EncoderModel(cfg).save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


def test_t5_text_encoder_from_local_folder(data: Path, tmp_path: Path) -> None:
    from baselines.pseudobinaural.system import load_checkpoint_dir

    t5 = _tiny_t5(tmp_path / "t5")
    rec = train_tiny(data, tmp_path / "run", steps=10, text_encoder="t5", t5_path=str(t5))
    tensors = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert not any("shared" in k or "encoder.block" in k for k in tensors)  # T5 not copied in
    s = load_checkpoint_dir(tmp_path / "run")
    m = (np.random.default_rng(0).standard_normal(12000) * 0.1).astype(np.float32)
    for prompt in ("The noise is located left , front", "", "x" * 5000):
        y = s.spatialize(m, prompt, 16000)
        assert y.shape == (2, 12000) and np.isfinite(y).all()
    assert rec["parameters"] == s.card()["parameters"]
    # a different T5 folder than the one trained with is refused
    (t5 / "config.json").write_text((t5 / "config.json").read_text().replace('"d_ff": 32', '"d_ff": 32 '))
    with pytest.raises(TasBenchError, match="FLAN-T5 folder differs"):
        load_checkpoint_dir(tmp_path / "run")
    with pytest.raises(TasBenchError, match="FLAN-T5 folder not found"):
        train_tiny(data, tmp_path / "run2", steps=10, text_encoder="t5", t5_path=str(tmp_path / "no"))


def test_lazy_and_preloaded_windows_are_identical(data: Path) -> None:
    from baselines.pseudobinaural.data import ClipArrays, LazyClip, WindowSampler, load_split

    eager = load_split(data, "train", 16000, preload=True)
    lazy = load_split(data, "train", 16000, preload=False)
    assert all(isinstance(c, ClipArrays) for c in eager) and all(isinstance(c, LazyClip) for c in lazy)
    a = WindowSampler(eager, 10080, 4, seed=3, target_rms=0.1).batch(5)
    b = WindowSampler(lazy, 10080, 4, seed=3, target_rms=0.1).batch(5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    # clips at another rate than the model's are decoded and resampled even in lazy mode
    assert all(isinstance(c, ClipArrays) for c in load_split(data, "train", 8000, preload=False))


def test_multi_process_training_under_torchrun(data: Path, tmp_path: Path) -> None:
    """The unchanged command runs as 2 distributed CPU processes (what `accelerate launch` does)."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():  # torchrun ships with torch, a dependency: never skip silently
        pytest.fail(f"torchrun not found next to {sys.executable} (it ships with torch)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "tas_bench.pipeline.cli", "train", "pseudobinaural",
           "--data", str(data), "--out", str(tmp_path / "ddp"), "--preset", "tiny", "--steps", "10",
           "--no-progress"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("trained pseudobinaural") == 1  # only the main process reports
    rec = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert rec["steps"] == 10
