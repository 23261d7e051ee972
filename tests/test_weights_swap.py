"""A backbone file replaced between hashing (the cache key) and loading is refused.

The generation evaluator reports each weight's sha256 in ``weights_info()``; the runner puts it
in the cache key and the results record. The model must then be built from bytes with that very
hash: otherwise a file swapped in between would be scored and cached under the old hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from evaluators.generation import evaluator as gen_mod
from evaluators.generation import vggish as vggish_mod
from evaluators.generation.checkpoints import load_into, load_state_dict_file
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.weights import WeightStatus


def _tiny(path: Path, value: float) -> str:
    save_file({"weight": torch.full((2, 3), value), "bias": torch.zeros(2)}, str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_checks_the_expected_hash(tmp_path: Path) -> None:
    f = tmp_path / "w.safetensors"
    sha = _tiny(f, 1.0)
    model = nn.Linear(3, 2)
    load_into(model, f, sha)
    assert torch.equal(model.weight, torch.ones(2, 3))
    assert set(load_state_dict_file(f)) == {"weight", "bias"}  # no hash given: no check
    with pytest.raises(TasBenchError, match="changed after it was hashed"):
        load_into(nn.Linear(3, 2), f, "0" * 64)


def test_evaluator_loads_the_bytes_its_cache_key_names(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "vgg.safetensors"
    first = _tiny(f, 1.0)

    def fake_resolve(name: str, root: object = None) -> WeightStatus:
        sha = hashlib.sha256(f.read_bytes()).hexdigest()
        return WeightStatus(name, str(f), "custom", sha, f.stat().st_size, True, False)

    monkeypatch.setattr("tas_bench.runtime.weights.resolve_weight", fake_resolve)
    monkeypatch.setattr(vggish_mod, "build_vggish", lambda: nn.Linear(3, 2))
    ev = gen_mod.GenerationEvaluator(vggish_weights="vgg.safetensors", fd_cross_check=False)
    assert ev.weights_info()["vgg.safetensors"]["sha256"] == first  # what the key is built from
    second = _tiny(f, 2.0)  # replaced after hashing, before loading
    assert second != first
    # weights_info() keeps reporting what the key was built from, and the load refuses the swap
    assert ev.weights_info()["vgg.safetensors"]["sha256"] == first
    with pytest.raises(TasBenchError, match="changed after it was hashed"):
        ev._load_vggish()
    # a fresh evaluator (a new run) hashes and loads the new file
    ev2 = gen_mod.GenerationEvaluator(vggish_weights="vgg.safetensors", fd_cross_check=False)
    assert ev2.weights_info()["vgg.safetensors"]["sha256"] == second
    assert torch.equal(ev2._load_vggish().weight, torch.full((2, 3), 2.0))
