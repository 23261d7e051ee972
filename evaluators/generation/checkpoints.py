"""Loading backbone checkpoints without unpickling arbitrary objects.

Accepted files: ``.safetensors``; or a PyTorch file read with ``torch.load(weights_only=True)``
holding either a state dict or ``{"model": state_dict, ...}`` (the official PANNs layout). The
official ``Cnn14_16k_mAP=0.438.pth`` stores a few NumPy scalars next to the tensors, so the
NumPy array reconstructor is allow-listed for the weights-only unpickler (no other globals).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from tas_bench.errors import TasBenchError


def _numpy_safe_globals() -> list:
    out: list = [np.ndarray, np.dtype]
    try:
        from numpy._core import multiarray as _ma  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as _ma  # type: ignore[no-redef]
    out.append(_ma._reconstruct)
    # files written with NumPy 1.x (the official PANNs checkpoints) name it numpy.core...
    out.append((_ma._reconstruct, "numpy.core.multiarray._reconstruct"))
    out.extend(getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType"))
    return out


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, as a flat ``{name: tensor}`` dict."""
    p = Path(path)
    if not p.is_file():
        raise TasBenchError("checkpoint file not found", path=p)
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(p), device="cpu"))
        except Exception as exc:  # safetensors raises its own error types
            raise TasBenchError(f"unreadable safetensors file ({exc})", path=p) from None
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors come in many types
        raise TasBenchError(
            f"cannot load as a weights-only PyTorch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200]})", path=p) from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise TasBenchError("not a state dict (expected {name: tensor} or {'model': {...}})",
                            path=p)
    return obj


def load_into(model: nn.Module, path: str | Path) -> None:
    """Load ``path`` into ``model`` with strict key and shape checking."""
    state = load_state_dict_file(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shape = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or bad_shape:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:5]}{' ...' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
        if bad_shape:
            k = bad_shape[0]
            parts.append(f"shape mismatch for {k}: file {tuple(state[k].shape)} vs model "
                         f"{tuple(own[k].shape)} ({len(bad_shape)} in all)")
        raise TasBenchError(
            f"checkpoint does not match {type(model).__name__}: " + "; ".join(parts), path=path,
            hint="is this the right file for this backbone and sample rate?")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
