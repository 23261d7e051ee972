"""`tas-bench train tas|tas-notext|tas-noflip`: run folder, resume after kill, config, cues."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from runkill import dies_after_first_checkpoint
from test_systems_api import make_dataset

from baselines.tas.train import cue_agreement, ild_db, itd_s, resolve_config, train_tas
from tas_bench.pipeline.cli import main
from tas_bench.runtime import runs
from tas_bench.runtime.errors import TasBenchError

#: A tiny model and a short run: 0.5 s windows (fold 4, 8 latent rows), 16-wide U-Net.
TINY: dict[str, Any] = {
    "batch_size": 2, "steps": 4, "val_every": 2, "checkpoint_every": 2, "val_windows": 2,
    "val_clips": 1, "val_sample_steps": 2, "warmup_steps": 2, "torch_threads": 1,
    "model": {"latent_frames": 8,
              "unet": {"block_out_channels": [16, 16, 32, 32], "heads": 2, "norm_num_groups": 8},
              "text_encoder": {"kind": "scratch", "text_dim": 16, "word_dim": 8, "max_tokens": 12},
              "flipper": {"width": 16, "hidden": 16}, "steps": 2, "micro_batch": 2},
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("tas-data"), n_train=6, n_val=2, n_test=2)


def _config(tmp_path: Path, kind: str = "tas") -> Path:
    cfg = json.loads(json.dumps(TINY))
    if kind == "tas-noflip":
        cfg["model"]["flipper"] = None
    p = tmp_path / f"tiny-{kind}.json"
    p.write_text(json.dumps(cfg))
    return p


def _train(data: Path, out: Path, kind: str = "tas", **over: Any) -> dict[str, Any]:
    return train_tas(kind, data, out, config_file=_config(out.parent, kind), overrides=over,
                     progress=False)


def test_resume_after_kill_gives_the_same_weights(data: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    straight = _train(data, tmp_path / "straight")
    with dies_after_first_checkpoint(monkeypatch):
        _train(data, tmp_path / "killed")
    assert not (tmp_path / "killed" / "model.safetensors").exists()
    rec = _train(data, tmp_path / "killed")
    assert rec["resumed_from"] == 2 and rec["steps"] == 4 and straight["resumed_from"] == 0
    a = (tmp_path / "straight" / "model.safetensors").read_bytes()
    b = (tmp_path / "killed" / "model.safetensors").read_bytes()
    assert a == b
    assert rec["revision"] == straight["revision"]
    rows_a = (tmp_path / "straight" / "metrics.csv").read_text().splitlines()
    rows_b = (tmp_path / "killed" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[:5] for r in rows_a] == [r.split(",")[:5] for r in rows_b]
    header = rows_a[0].split(",")
    last = dict(zip(header, rows_a[-1].split(",")))
    assert last["step"] == "4" and float(last["val_loss"]) > 0
    assert 0.0 <= float(last["val_ild_sign"]) <= 1.0 and float(last["val_itd_err_us"]) >= 0
    assert float(last["flipper_loss"]) > 0


def test_cli_train_noflip_register_and_spatialize(data: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAS_BENCH_HOME", str(tmp_path / "home"))
    cfg = _config(tmp_path, "tas-noflip")
    assert main(["train", "tas-noflip", "--data", str(data), "--out", str(tmp_path / "run"),
                 "--config", str(cfg), "--steps", "2", "--no-progress"]) == 0
    rec = json.loads((tmp_path / "run" / "run.json").read_text())
    assert rec["kind"] == "tas-noflip" and rec["steps"] == 2
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[-1].split(",")[3] == ""  # no flipper loss in the ablation
    assert main(["register", "my-tas", str(tmp_path / "run")]) == 0
    system = runs.load_registered("my-tas")
    assert system.card()["kind"] == "tas-noflip" and system.card()["revision"] == rec["revision"]
    mono = np.random.default_rng(0).standard_normal(9000).astype(np.float32) * 0.1
    y = system.spatialize(mono, "a dog barks on the left", 16000)
    assert y.shape == (2, 9000)
    np.testing.assert_allclose(y[0] + y[1], mono, atol=1e-5)


def test_notext_kind_trains_on_empty_prompts(data: Path, tmp_path: Path) -> None:
    _train(data, tmp_path / "nt", kind="tas-notext", steps=2)
    system = runs.load_run(tmp_path / "nt")
    pipe = system.pipeline
    a, _ = pipe.encode_text(["a dog on the left"])
    b, _ = pipe.encode_text(["a cat on the right behind"])
    assert np.array_equal(a.detach().numpy(), b.detach().numpy())


def test_config_resolution_and_refusals(tmp_path: Path) -> None:
    cfg = resolve_config("tas", None, {"steps": 7, "preset": None, "model.steps": 3,
                                       "model.codec.fold": 8, "model.latent_frames": 16})
    assert cfg["steps"] == 7 and cfg["model"]["steps"] == 3 and cfg["model"]["codec"]["fold"] == 8
    assert cfg["betas"] == [0.95, 0.999] and cfg["mixed_precision"] == "bf16"
    assert resolve_config("tas-noflip")["model"]["flipper"] is None
    te = resolve_config("tas", None, {"text_encoder": "t5", "t5_path": "/x"})["model"]["text_encoder"]
    assert te["kind"] == "t5" and te["t5_path"] == "/x" and te["text_dim"] == 1024
    with pytest.raises(TasBenchError, match="unknown TAS training field"):
        resolve_config("tas", None, {"nonsense": 1})
    with pytest.raises(TasBenchError, match="unknown TAS config field"):
        resolve_config("tas", None, {"model.nonsense": 1})
    with pytest.raises(TasBenchError, match="unknown preset"):
        resolve_config("tas", None, {"preset": "huge"})
    with pytest.raises(TasBenchError, match="batch_size"):
        resolve_config("tas", None, {"batch_size": 0})
    with pytest.raises(TasBenchError, match="betas"):
        resolve_config("tas", None, {"betas": [0.9]})
    with pytest.raises(TasBenchError, match="unknown TAS kind"):
        resolve_config("tas-huge")


def test_refuses_another_config_in_the_same_run(data: Path, tmp_path: Path) -> None:
    _train(data, tmp_path / "run", steps=2)
    with pytest.raises(TasBenchError, match="another config"):
        _train(data, tmp_path / "run", steps=2, lr=0.1)


def test_cue_helpers_hand_computed() -> None:
    sr = 16000
    s = np.random.default_rng(1).standard_normal(4000)
    left, right = s, 0.5 * np.concatenate([np.zeros(5), s[:-5]])  # right 6 dB down, 5 samples late
    x = np.stack([left, right])
    assert ild_db(x) == pytest.approx(10 * np.log10(np.sum(left**2) / np.sum(right**2)))
    assert ild_db(x) == pytest.approx(6.02, abs=0.05)
    assert itd_s(x, sr) == pytest.approx(5 / sr)
    assert itd_s(x[::-1], sr) == pytest.approx(-5 / sr)
    sign, err = cue_agreement([x, x[::-1]], [x, x], sr)
    assert sign == 0.5 and err == pytest.approx(0.5 * 10 / sr * 1e6)


def test_mirror_augment_mirrors_whole_windows_and_leaves_the_draws_alone(data: Path) -> None:
    from baselines.pseudobinaural.data import WindowSampler, load_split
    from tas_bench.data.prompts import swap_left_right

    clips = load_split(data, "train", 16000, preload=True)
    plain = WindowSampler(clips, 8000, 16, seed=3, target_rms=0.1)
    mirr = WindowSampler(clips, 8000, 16, seed=3, target_rms=0.1, mirror=True)
    flipped = 0
    for step in (0, 7):
        m0, d0, p0 = plain.batch(step)
        m1, d1, p1 = mirr.batch(step)
        np.testing.assert_array_equal(m0, m1)  # same windows drawn; the mix is unchanged
        for i in range(16):
            if np.array_equal(d1[i], d0[i]):
                assert p1[i] == p0[i]
            else:
                np.testing.assert_array_equal(d1[i], -d0[i])
                assert p1[i] == swap_left_right(p0[i])
                flipped += 1
        again = mirr.batch(step)
        np.testing.assert_array_equal(again[1], d1)
        assert again[2] == p1
    assert 8 <= flipped <= 24  # p = 0.5 over 32 windows


def test_mirror_augment_is_recorded_and_checked(tmp_path: Path) -> None:
    assert resolve_config("tas")["mirror_augment"] is False
    assert resolve_config("tas", None, {"mirror_augment": True})["mirror_augment"] is True
    with pytest.raises(TasBenchError, match="mirror_augment"):
        resolve_config("tas", None, {"mirror_augment": "yes"})


def test_lr_factor_hand_computed() -> None:
    from baselines.tas.train import lr_factor

    assert lr_factor(0, 100, 10, "constant") == pytest.approx(0.1)
    assert lr_factor(50, 100, 10, "constant") == 1.0
    assert lr_factor(9, 100, 10, "cosine") == 1.0
    assert lr_factor(10, 100, 10, "cosine") == 1.0
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(3, 8, 0, "cosine") == pytest.approx(0.5 * (1 + np.cos(np.pi * 3 / 8)))
    assert resolve_config("tas")["lr_schedule"] == "constant"
    with pytest.raises(TasBenchError, match="lr_schedule"):
        resolve_config("tas", None, {"lr_schedule": "linear"})


def test_cosine_run_logs_the_schedule_and_refuses_a_longer_resume(data: Path, tmp_path: Path) -> None:
    _train(data, tmp_path / "run", lr_schedule="cosine", warmup_steps=0)
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    head = rows[0].split(",")
    lrs = [float(r.split(",")[head.index("lr")]) for r in rows[1:]]
    # logged after steps 2 and 4 of 4: the lr of steps 1 and 3 (0-based)
    base = TINY.get("lr", 5e-4)
    assert lrs == pytest.approx([base * 0.5 * (1 + np.cos(np.pi * s / 4)) for s in (1, 3)], rel=1e-4)
    with pytest.raises(TasBenchError, match="another config"):
        _train(data, tmp_path / "run", lr_schedule="cosine", warmup_steps=0, steps=8)
