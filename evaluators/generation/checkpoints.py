"""Loading backbone checkpoints without unpickling arbitrary objects.

Accepted files: ``.safetensors``; or a PyTorch file read with ``torch.load(weights_only=True)``
holding either a state dict or ``{"model": state_dict, ...}`` (the official PANNs layout). The
official PANNs checkpoints store NumPy values next to the tensors (arrays and scalars such as
``np.int64`` / ``np.float64``), so exactly the NumPy rebuild functions those need are
allow-listed for the weights-only unpickler: the array reconstructor, the scalar constructor
(``numpy._core.multiarray.scalar``, also under its NumPy 1.x name ``numpy.core.multiarray``),
``numpy.ndarray`` and the dtype classes. None of them calls back into arbitrary code: they
build an array or a scalar from a dtype and raw bytes.

A file the weights-only unpickler refuses is refused with our own message (the file, the
global it needs, how to convert it); we never suggest loading it with ``weights_only=False``.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tas_bench.runtime.errors import TasBenchError


def _numpy_safe_globals() -> list:
    out: list = [np.ndarray, np.dtype]
    try:
        from numpy._core import multiarray as _ma  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray as _ma  # type: ignore[no-redef]
    # files written with NumPy 1.x (the official PANNs checkpoints) name these numpy.core...
    for fn in (_ma._reconstruct, _ma.scalar):
        out.append(fn)
        out.append((fn, f"numpy.core.multiarray.{fn.__name__}"))
    out.extend(getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType"))
    return out


_GLOBAL_RE = re.compile(r"Unsupported global: GLOBAL (\S+)")
_REASON_RE = re.compile(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", re.S)


def _refusal(exc: BaseException) -> str:
    """Our message for a file ``torch.load(weights_only=True)`` rejected.

    torch's own message advises re-running with ``weights_only=False``, i.e. unpickling the
    file with arbitrary code execution; we never pass that advice on.
    """
    text = str(exc)
    glob = _GLOBAL_RE.search(text)
    convert = ("convert it to .safetensors, or save a plain state dict ({name: tensor}) with "
               "torch.save, on a machine where you trust the file")
    if glob:
        return (f"cannot be loaded safely: its pickle needs the global {glob.group(1)}, which "
                f"the weights-only loader does not allow (unpickling it could run arbitrary "
                f"code); {convert}")
    reason = _REASON_RE.search(text)
    if reason:
        detail = " ".join(reason.group(1).split())[:200]
        return (f"cannot be loaded safely: the weights-only loader refuses it ({detail}); "
                f"{convert}")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if "weights_only" in first or "Weights only" in first:  # torch's advice, never ours
        first = ""
    return ("not a readable weights-only PyTorch checkpoint (" + type(exc).__name__
            + (f": {first[:200]}" if first else "") + ")")


def load_state_dict_file(path: str | Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, as a flat ``{name: tensor}`` dict.

    The file is read once into memory and parsed from those bytes. With ``expected_sha256``
    (the hash a cache key or a results record was built from) the bytes read must have that
    sha256: a file replaced between hashing and loading is refused, never scored under the old
    hash."""
    p = Path(path)
    if not p.is_file():
        raise TasBenchError("checkpoint file not found", path=p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise TasBenchError(f"cannot read checkpoint ({exc.strerror or exc})", path=p) from None
    if expected_sha256 is not None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected_sha256:
            raise TasBenchError(
                f"file changed after it was hashed (sha256 {expected_sha256[:12]}... when hashed, "
                f"{actual[:12]}... when loaded)", path=p,
                hint="another process replaced the weights during this run; run the command again")
    if p.suffix == ".safetensors":
        from safetensors.torch import load as load_bytes

        try:
            return dict(load_bytes(data))
        except Exception as exc:  # safetensors raises its own error types
            raise TasBenchError(f"unreadable safetensors file ({exc})", path=p) from None
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors come in many types
        raise TasBenchError(_refusal(exc), path=p) from None
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise TasBenchError("not a state dict (expected {name: tensor} or {'model': {...}})",
                            path=p)
    return obj


def load_into(model: nn.Module, path: str | Path, expected_sha256: str | None = None) -> None:
    """Load ``path`` into ``model`` with strict key and shape checking (and, with
    ``expected_sha256``, only if the bytes loaded have that hash)."""
    state = load_state_dict_file(path, expected_sha256)
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
