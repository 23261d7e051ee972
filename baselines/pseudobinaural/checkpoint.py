"""Checkpoint files of PseudoBinaural runs: safetensors for tensors, JSON for everything else.

Run folder ``RUN/``::

    config.json                     resolved config (every field)
    data.json                       training dataset path and fingerprint
    metrics.csv                     step, train_loss, val_loss, lr, wall_s, steps_per_s
    checkpoints/step_00000250/      model.safetensors, optimizer.safetensors, state.json
    model.safetensors               final weights (written when training finishes)
    run.json                        the record: kind, hashes, fingerprint, steps, parameters

``model.safetensors`` carries in its metadata the format tag, the system kind, the model-config
hash and (scratch text encoder) the vocabulary as JSON, so weights never travel without the
tokeniser that goes with them. Nothing is pickled; checkpoint directories are written under a
temporary name and renamed, so a killed run leaves either a complete checkpoint or none.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from tas_bench.errors import TasBenchError
from tas_bench.fileio import atomic_path, sha256_file, stable_hash

FORMAT = "tas-bench-pseudobinaural-1"
MODEL_FILE, OPTIM_FILE, STATE_FILE = "model.safetensors", "optimizer.safetensors", "state.json"
RUN_FILE, CONFIG_FILE, DATA_FILE, METRICS_FILE = "run.json", "config.json", "data.json", "metrics.csv"


def revision(checkpoint_sha256: str, model_hash: str) -> str:
    """A system revision: hash of the checkpoint bytes and the model config (16 hex chars)."""
    return stable_hash({"checkpoint": checkpoint_sha256, "config": model_hash})[:16]


def save_model(path: Path, state: dict[str, torch.Tensor], meta: dict[str, str]) -> None:
    """Write model tensors + string metadata atomically."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, **meta})


def read_model(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read model tensors and metadata; a missing, truncated or foreign file is a TasBenchError."""
    if not path.is_file():
        raise TasBenchError("checkpoint not found", path=path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise TasBenchError(f"corrupted or truncated checkpoint ({exc})", path=path) from None
    if meta.get("format") != FORMAT:
        raise TasBenchError(f"not a PseudoBinaural checkpoint (format {meta.get('format')!r}, "
                            f"expected {FORMAT!r})", path=path)
    return tensors, meta


def optimizer_to_files(opt_state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into tensors (safetensors) and JSON-able scalars."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, st in opt_state["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()}
              for g in opt_state["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`optimizer_to_files`."""
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        if not name.startswith("state."):
            continue
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = t
    for name, v in js.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = v
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in js["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(run: Path, step: int, model_state: dict[str, torch.Tensor], meta: dict[str, str],
                    opt_state: dict[str, Any], extra: dict[str, Any], keep: int) -> Path:
    """Write ``checkpoints/step_N`` (temp folder + rename) and prune to the newest ``keep``."""
    root = run / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:08d}"
    tmp = root / f".step_{step:08d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_model(tmp / MODEL_FILE, model_state, meta)
    opt_tensors, opt_json = optimizer_to_files(opt_state)
    opt_tensors["rng.torch"] = torch.get_rng_state()
    save_file(opt_tensors, str(tmp / OPTIM_FILE))
    (tmp / STATE_FILE).write_text(json.dumps({"step": step, "optimizer": opt_json, **extra},
                                             sort_keys=True, indent=1), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    for old in list_checkpoints(run)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(run: Path) -> list[Path]:
    """Complete checkpoint folders of a run, oldest first (temp leftovers ignored)."""
    root = run / "checkpoints"
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_")
            and (p / STATE_FILE).is_file()]
    return sorted(done, key=lambda p: p.name)


def load_checkpoint(ckpt: Path) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, Any],
                                         torch.Tensor | None, dict[str, Any]]:
    """(model tensors, model metadata, optimizer state_dict, torch RNG state, state.json)."""
    model_state, meta = read_model(ckpt / MODEL_FILE)
    try:
        opt_tensors = load_file(str(ckpt / OPTIM_FILE))
        state = json.loads((ckpt / STATE_FILE).read_text(encoding="utf-8"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise TasBenchError(f"corrupted checkpoint ({exc})", path=ckpt) from None
    rng = opt_tensors.pop("rng.torch", None)
    return model_state, meta, optimizer_from_files(opt_tensors, state["optimizer"]), rng, state


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; missing or malformed -> TasBenchError naming it."""
    if not path.is_file():
        raise TasBenchError(f"{what} not found", path=path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TasBenchError(f"malformed {what} ({exc})", path=path) from None
    if not isinstance(obj, dict):
        raise TasBenchError(f"{what} must be a JSON object", path=path)
    return obj


def checkpoint_sha256(path: Path) -> str:
    return sha256_file(path)
