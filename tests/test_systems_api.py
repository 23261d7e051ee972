"""System API contract: Mono-Mono, PseudoBinaural (tiny, trained by the test), registry."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.base import ClippedInputWarning, compose_binaural, validate_mono
from baselines.mono_mono import MonoMono
from tas_bench.data.manifest import write_manifest
from tas_bench.runtime.errors import TasBenchError

SR = 16000


def make_dataset(root: Path, n_train: int = 12, n_val: int = 2, n_test: int = 4,
                 seconds: float = 1.0, seed: int = 0) -> Path:
    """A tiny binaural dataset: noise louder and earlier on the side the prompt names."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    clips = []
    n = int(seconds * SR)
    k = 0
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        for _ in range(count):
            side = "left" if k % 2 == 0 else "right"
            s = rng.standard_normal(n).astype(np.float32) * 0.1
            far = 0.4 * np.concatenate([np.zeros(8, np.float32), s[:-8]])
            lr = np.stack([s, far]) if side == "left" else np.stack([far, s])
            cid = f"clip{k:03d}"
            (root / "audio").mkdir(parents=True, exist_ok=True)
            sf.write(root / "audio" / f"{cid}.wav", lr.T, SR, subtype="FLOAT")
            az = 60.0 if side == "left" else -60.0
            clips.append({
                "id": cid, "split": split, "audio": f"audio/{cid}.wav", "sample_rate": SR,
                "duration": seconds, "category": "single_doa_de",
                "sources": [{"label": "noise", "azimuth": az, "elevation": 10.0, "distance": 2.0,
                             "direction": [side, "front", "above"],
                             "provenance": {"package": "test", "file": "rng", "licence": "CC0"}}],
                "prompt": f"The noise is located {side}, front, above, 2m away.",
                "prompt_type": "A", "qa": [], "hrtf": None, "room": None, "seed": seed,
            })
            k += 1
    write_manifest(root, clips)
    return root


def train_tiny(data: Path, out: Path, kind: str = "pseudobinaural", **over) -> dict:
    """Train the tiny preset for a few steps (about a second)."""
    from baselines.pseudobinaural.train import train_pseudobinaural

    return train_pseudobinaural(kind, data, out, overrides={"preset": "tiny", "torch_threads": 1,
                                                            **over}, progress=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sys")
    data = make_dataset(root / "data")
    train_tiny(data, root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def pb(tiny_run: Path):
    from baselines.pseudobinaural.system import load_checkpoint_dir

    return load_checkpoint_dir(tiny_run)


def _noise(n: int, seed: int = 1, scale: float = 0.1) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).astype(np.float32)


# ---------------------------------------------------------------- base helpers


def test_compose_binaural_hand_case() -> None:
    m = np.array([1.0, 2.0, 0.0], np.float32)
    d = np.array([1.0, -2.0, 0.5], np.float32)
    y = compose_binaural(m, d)
    np.testing.assert_allclose(y, [[1.0, 0.0, 0.25], [0.0, 2.0, -0.25]])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-2, 2, width=32), min_size=1, max_size=64),
       st.lists(st.floats(-2, 2, width=32), min_size=64, max_size=64))
def test_compose_sum_is_mix(m: list[float], d: list[float]) -> None:
    mm = np.array(m, np.float32)
    y = compose_binaural(mm, np.array(d[: len(m)], np.float32))
    np.testing.assert_allclose(y[0] + y[1], mm, atol=1e-6)
    np.testing.assert_allclose(y[0] - y[1], np.array(d[: len(m)], np.float32), atol=1e-6)


@pytest.mark.parametrize("bad, msg", [
    (np.array([0.1, np.nan], np.float32), "NaN"),
    (np.array([0.1, np.inf], np.float32), "NaN or Inf"),
    (np.zeros(0, np.float32), "empty"),
    (np.zeros((2, 10), np.float32), "1-D"),
    (np.array(["a", "b"]), "numeric"),
])
def test_validate_mono_rejects(bad: np.ndarray, msg: str) -> None:
    with pytest.raises(TasBenchError, match=msg):
        validate_mono(bad)


def test_validate_mono_clipped_warns_and_accepts() -> None:
    x = np.clip(_noise(16000, scale=2.0), -1.0, 1.0)
    with pytest.warns(ClippedInputWarning):
        y = validate_mono(x)
    assert y.shape == x.shape
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_mono(_noise(16000))  # an ordinary signal does not warn


# ---------------------------------------------------------------- Mono-Mono


def test_mono_mono_contract() -> None:
    s = MonoMono()
    m = _noise(12345)
    y = s.spatialize(m, "The dog is on the left", 22050)
    assert y.shape == (2, 12345) and y.dtype == np.float32
    assert s.output_rate(22050) == 22050
    np.testing.assert_array_equal(y[0], y[1])
    np.testing.assert_allclose(y[0] + y[1], m, atol=1e-7)
    np.testing.assert_array_equal(y, s.spatialize(m, "other prompt", 22050))
    card = s.card()
    for key in ("name", "revision", "parameters", "sample_rate", "training_data", "licence",
                "description", "config"):
        assert key in card
    assert card["parameters"] == 0


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-1, 1, width=32), min_size=1, max_size=300))
def test_mono_mono_sum_property(xs: list[float]) -> None:
    m = np.array(xs, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClippedInputWarning)  # +-1 runs look clipped; accepted
        y = MonoMono().spatialize(m, "", 16000)
    np.testing.assert_allclose(y[0] + y[1], m, atol=1e-7)


def test_batch_length_mismatch_and_bad_rate() -> None:
    with pytest.raises(TasBenchError, match="prompts"):
        MonoMono().spatialize_batch([_noise(10)], [], 16000)
    with pytest.raises(TasBenchError, match="sample rate"):
        MonoMono().spatialize_batch([_noise(10)], [""], 0)
    with pytest.raises(TasBenchError, match="string"):
        MonoMono().spatialize_batch([_noise(10)], [42], 16000)  # type: ignore[list-item]


# ---------------------------------------------------------------- PseudoBinaural


def test_window_starts_hand_cases() -> None:
    from baselines.pseudobinaural.system import window_starts

    assert window_starts(100, 100, 10) == [0]
    assert window_starts(50, 100, 10) == [0]
    assert window_starts(130, 100, 10) == [0, 10, 20, 30]
    assert window_starts(125, 100, 10) == [0, 10, 20, 25]  # last window aligned to the end


def test_pseudobinaural_contract(pb) -> None:
    m = _noise(int(1.7 * SR))
    y = pb.spatialize(m, "The noise is located left, front, above, 2m away.", SR)
    assert y.shape == (2, m.shape[0]) and y.dtype == np.float32
    assert pb.sample_rate == SR and np.isfinite(y).all()
    # reconstruction identity: the mix passes through, windowing only touches L - R
    np.testing.assert_allclose(y[0] + y[1], m, atol=1e-6)
    assert np.abs(y[0] - y[1]).max() > 0  # the network does predict a difference
    # deterministic in eval mode, batched or not
    y2 = pb.spatialize_batch([m, _noise(5000, 3)], ["The noise is located left, front, above, "
                                                     "2m away.", "right"], SR)[0]
    np.testing.assert_array_equal(y, y2)
    card = pb.card()
    assert card["sample_rate"] == SR and card["parameters"] > 0
    assert len(card["revision"]) == 16 and card["training_data"]


def test_pseudobinaural_other_rate_short_and_silent(pb) -> None:
    m8 = _noise(8000)  # 1 s at 8 kHz -> 16000 samples at the system rate
    y = pb.spatialize(m8, "left", 8000)
    assert y.shape == (2, 16000)
    short = _noise(500)  # far shorter than one 0.63 s window: zero-padded, trimmed back
    ys = pb.spatialize(short, "left", SR)
    assert ys.shape == (2, 500)
    np.testing.assert_allclose(ys[0] + ys[1], short, atol=1e-6)
    silent = pb.spatialize(np.zeros(20000, np.float32), "left", SR)
    assert silent.shape == (2, 20000) and not silent.any()


@pytest.mark.parametrize("prompt", ["", "x" * 20000, "left " * 3000, "声音在左边。",
                                    "Le chien est à gauche", "!!!", "\n\t"])
def test_pseudobinaural_odd_prompts_do_not_crash(pb, prompt: str) -> None:
    m = _noise(12000)
    y = pb.spatialize(m, prompt, SR)
    assert y.shape == (2, 12000) and np.isfinite(y).all()


def test_unknown_language_behaves_like_empty_prompt(pb) -> None:
    m = _noise(12000)
    np.testing.assert_array_equal(pb.spatialize(m, "声音在左边", SR), pb.spatialize(m, "", SR))


def test_pseudobinaural_nan_input(pb) -> None:
    m = _noise(12000)
    m[5] = np.nan
    with pytest.raises(TasBenchError, match="NaN"):
        pb.spatialize(m, "left", SR)


# ---------------------------------------------------------------- registry


def test_registry_lists_builtins_and_unknown_name() -> None:
    from baselines.registry import SYSTEMS, list_systems, load_system

    assert {"mono-mono", "pseudobinaural-demo"} <= set(SYSTEMS.names())
    names = [c["name"] for c in list_systems()]
    assert "mono-mono" in names and "pseudobinaural-demo" in names
    with pytest.raises(TasBenchError, match="known: .*mono-mono"):
        load_system("no-such-system")


def test_register_and_load_user_system(tiny_run: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from baselines.registry import describe, list_systems, load_system, register_run

    monkeypatch.setenv("TAS_BENCH_HOME", str(tmp_path / "home"))
    rec = register_run("my-pb", tiny_run)
    assert (tmp_path / "home" / "systems" / "my-pb.json").is_file()
    s = load_system("my-pb")
    assert s.card()["revision"] == rec["card"]["revision"]
    assert describe("my-pb")["revision"] == rec["card"]["revision"]
    assert "my-pb" in [c["name"] for c in list_systems()]
    with pytest.raises(TasBenchError, match="built-in"):
        register_run("mono-mono", tiny_run)
    with pytest.raises(TasBenchError, match="invalid system name"):
        register_run("Bad Name!", tiny_run)


@pytest.mark.parametrize("name", ["pseudobinaural-demo", "pseudobinaural-notext-demo"])
def test_shipped_checkpoints(name: str) -> None:
    from baselines.registry import SHIPPED, describe, load_system

    folder = SHIPPED[name]
    assert (folder / "model.safetensors").stat().st_size <= 25 * 2**20
    card = json.loads((folder / "card.json").read_text())
    for key in ("command", "data_command", "training_data", "seed", "git_commit", "revision",
                "evaluation"):
        assert card.get(key) is not None, key
    assert (folder / "train_log.csv").is_file()
    s = load_system(name)
    assert s.card()["revision"] == describe(name)["revision"] == card["revision"]
    y = s.spatialize(_noise(20000), "The bell is located left, front, above, 2m away.", SR)
    assert y.shape == (2, 20000)


@pytest.mark.parametrize("name", ["pseudobinaural-demo", "pseudobinaural-notext-demo"])
def test_shipped_outputs_equal_those_before_the_shared_plumbing(name: str) -> None:
    """tests/golden/pseudobinaural/shipped_outputs.npz holds L - R of each shipped checkpoint for
    a fixed input, computed by the code before the port onto tas_bench.runtime.runs / tas_bench.runtime.text."""
    from baselines.registry import load_system

    gold = np.load(Path(__file__).parent / "golden" / "pseudobinaural" / "shipped_outputs.npz")
    key = name.replace("-", "_")
    s = load_system(name)
    assert s.card()["revision"] == str(gold[key + "_revision"])
    y = s.spatialize(gold["mono"], "The bell is located left, front, above, 2m away.", SR)
    np.testing.assert_allclose(y[0] - y[1], gold[key], rtol=0, atol=1e-6)
    np.testing.assert_allclose(y[0] + y[1], gold["mono"], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_shipped_demo_beats_mono_mono_on_unseen_seed(tmp_path: Path) -> None:
    """Acceptance check on a demo test split simulated with a seed the checkpoint never saw."""
    from baselines.pseudobinaural.demo_eval import evaluate, lateral_check
    from tas_bench.data.simulate import simulate_dataset

    data = tmp_path / "test"
    simulate_dataset(data, preset="demo", seed=777, n_train=0, n_val=0, n_test=40, duration=3.0,
                     progress=False)
    rep = evaluate("pseudobinaural-demo", data, tmp_path / "pred")
    pb, mm = rep["systems"]["pseudobinaural-demo"], rep["systems"]["mono-mono"]
    assert pb["stft"] < mm["stft"] and pb["env"] < mm["env"]
    lat = lateral_check("pseudobinaural-demo", data)
    assert lat["n_single_source"] >= 8
    assert lat["lateral_accuracy"] >= 0.7  # chance is 0.5
    assert lat["swap_flip_rate"] >= 0.6  # swapping left/right in the prompt flips the ILD sign
    nt = lateral_check("pseudobinaural-notext-demo", data)
    assert nt["swap_flip_rate"] == 0.0  # the no-text ablation cannot react to the prompt
