"""The shipped TAS systems: registered, ≤ 25 MB, card with commands/data/log, load and run."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

NAMES = ["tas-demo", "tas-notext-demo", "tas-noflip-demo"]
KIND = {"tas-demo": "tas", "tas-notext-demo": "tas-notext", "tas-noflip-demo": "tas-noflip"}


@pytest.mark.parametrize("name", NAMES)
def test_shipped_tas_folder_and_card(name: str) -> None:
    from baselines.registry import SHIPPED, SYSTEMS, describe, load_system

    assert name in SYSTEMS.names()
    folder = SHIPPED[name]
    assert (folder / "model.safetensors").stat().st_size <= 25 * 2**20
    card = json.loads((folder / "card.json").read_text())
    for key in ("command", "data_command", "training_data", "seed", "git_commit", "revision",
                "sampling"):
        assert card.get(key) is not None, key
    assert card["kind"] == KIND[name] and card["training_log"] == "train_log.csv"
    assert f"train {KIND[name]} " in card["command"] and re.search(r"--config baselines/tas/demo_config(_mirror)?\.json ", card["command"])
    run = json.loads((folder / "run.json").read_text())
    assert card["training_data"] == run["data_fingerprint"] and card["data_command"].count(
        run["data_fingerprint"]) == 1
    assert card["sampling"]["steps"] >= 1 and 1.0 <= card["sampling"]["guidance_scale"] <= 10.0
    s = load_system(name)
    live = s.card()
    assert live["revision"] == describe(name)["revision"] == card["revision"] == run["revision"]
    assert live["sampling"] == card["sampling"]
    mono = (np.random.default_rng(0).standard_normal(5000) * 0.1).astype(np.float32)
    y = s.spatialize(mono, "The bell is located left, front, above, 2m away.", 16000)
    assert y.shape == (2, 5000) and np.isfinite(y).all()
    np.testing.assert_allclose(y[0] + y[1], mono, atol=1e-5)


def test_shipped_recipes_match_their_config_files() -> None:
    """All three shipped TAS systems are built from baselines/tas/demo_config.json: the shipped
    configs carry that file's model fields."""
    from pathlib import Path

    from baselines.registry import SHIPPED

    want = json.loads((Path(__file__).resolve().parents[1] / "baselines" / "tas"
                       / "demo_config.json").read_text())["model"]
    for name in NAMES:
        have = json.loads((SHIPPED[name] / "card.json").read_text())["config"]
        assert have["latent_frames"] == want["latent_frames"], name
        for key, value in want["unet"].items():
            assert have["unet"][key] == value, (name, key)
        assert have["unet"].get("prior_skip") is True, name


def test_shipped_tas_systems_sample_alike() -> None:
    """The full system and its ablations are compared under one sampling setting."""
    from baselines.registry import SHIPPED

    cards = [json.loads((SHIPPED[n] / "card.json").read_text()) for n in NAMES]
    assert all(c["sampling"] == cards[0]["sampling"] for c in cards)


def _recipe(card: dict) -> list[str]:
    """The training command without the kind and the run folder (what like-for-like shares)."""
    words = card["command"].split()
    i = words.index("--out")
    del words[i:i + 2]
    assert words[:3] == ["tas-bench", "train", card["kind"]]
    return words[3:]


def test_ablations_are_trained_like_for_like() -> None:
    """The ablations were trained by tas-demo's command (kind aside) on the same data, so the
    ranking full < w/o flipper < w/o text compares the architectures and nothing else."""
    from baselines.registry import SHIPPED

    cards = {n: json.loads((SHIPPED[n] / "card.json").read_text()) for n in NAMES}
    full = cards["tas-demo"]
    for name in NAMES[1:]:
        assert _recipe(cards[name]) == _recipe(full), name
        assert cards[name]["training_data"] == full["training_data"], name
        assert cards[name]["seed"] == full["seed"], name
