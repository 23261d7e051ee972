"""PseudoBinaural as a :class:`baselines.base.System`: load a checkpoint folder, spatialize.

Inference (REFERENCE.md §3): 0.63 s windows with a hop of ``infer_hop_s`` (0.1 s), the last
window aligned to the clip end; each window's mix is RMS-normalised to 0.1, the predicted
difference is scaled back, overlap-added and divided by the number of windows covering each
sample. The output is ``L = (m + d)/2``, ``R = (m - d)/2``, so ``L + R = m`` exactly (float
rounding); windowing only affects ``d``. A clip shorter than one window is zero-padded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.base import System, compose_binaural
from baselines.pseudobinaural.config import KINDS, PBConfig, config_from_dict
from baselines.pseudobinaural.model import PseudoBinauralNet
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.runs import open_model_dir, revision
from tas_bench.runtime.text import (
    build_text_encoder,
    check_text_encoder_meta,
    text_encoder_meta,
    vocab_from_meta,
)

#: ``format`` tag in the metadata of PseudoBinaural safetensors files (checkpoints and finals).
FORMAT = "tas-bench-pseudobinaural-1"
#: How errors name these checkpoints.
WHAT = "PseudoBinaural"

#: Windows of one clip per forward pass at inference (clips are never mixed in a forward).
INFER_BATCH = 64


def build_model(cfg: PBConfig, vocab: list[str] | None) -> PseudoBinauralNet:
    """A fresh network for ``cfg`` (``vocab`` needed by the scratch text encoder)."""
    enc = build_text_encoder(cfg.text_encoder, text_dim=cfg.text_dim, vocab=vocab,
                             word_dim=cfg.word_dim, max_tokens=cfg.max_tokens,
                             t5_path=cfg.t5_path, t5_max_length=cfg.t5_max_length)
    return PseudoBinauralNet(cfg, enc)


def count_parameters(net: torch.nn.Module) -> int:
    """Trainable + stored parameters of the network (a frozen external T5 is not counted)."""
    return int(sum(p.numel() for p in net.parameters()))


def window_starts(length: int, width: int, hop: int) -> list[int]:
    """Start samples of the inference windows: every ``hop``, plus one aligned to the end."""
    if length <= width:
        return [0]
    starts = list(range(0, length - width + 1, hop))
    if starts[-1] != length - width:
        starts.append(length - width)
    return starts


def model_meta(cfg: PBConfig, net: PseudoBinauralNet) -> dict[str, str]:
    """Safetensors metadata written with the weights: kind, model hash, text-encoder identity."""
    return {"kind": cfg.kind, "model_hash": cfg.model_hash(), **text_encoder_meta(net.text_encoder)}


class PseudoBinauralSystem(System):
    """A loaded PseudoBinaural checkpoint in eval mode (deterministic)."""

    def __init__(self, net: PseudoBinauralNet, cfg: PBConfig, *, name: str,
                 checkpoint_sha256: str, record: dict[str, Any] | None = None,
                 device: str | torch.device = "cpu") -> None:
        self.net = net.to(device).eval()
        self.cfg = cfg
        self.name = name
        self.sample_rate = cfg.sample_rate
        self.device = torch.device(device)
        self.checkpoint_sha256 = checkpoint_sha256
        self.record = dict(record or {})

    @property
    def model_hash(self) -> str:
        """Hash of the model-defining config fields (what a registration records)."""
        return self.cfg.model_hash()

    def card(self) -> dict[str, Any]:
        cfg = self.cfg
        desc = ("Mono2Binaural/PseudoBinaural audio U-Net on 0.63 s STFT windows predicting a "
                "complex mask for L-R, ")
        desc += ("text vector fused at the bottleneck" + (" and by FiLM" if cfg.film else "")
                 if cfg.use_text else "no text (ablation: empty prompt)")
        return {
            "name": self.name,
            "kind": cfg.kind,
            "revision": revision(self.checkpoint_sha256, cfg.model_hash()),
            "parameters": count_parameters(self.net),
            "sample_rate": cfg.sample_rate,
            "training_data": self.record.get("data_fingerprint"),
            "licence": self.record.get("licence", "Apache-2.0"),
            "description": desc + f"; text encoder {cfg.text_encoder}.",
            "checkpoint_sha256": self.checkpoint_sha256,
            "config": cfg.model_dict(),
            "steps": self.record.get("steps"),
        }

    @torch.no_grad()
    def _spatialize(self, mono: list[np.ndarray], prompts: list[str]) -> list[np.ndarray]:
        # on GPU: no autotuning and deterministic cuDNN kernels (same shapes -> same bytes)
        with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True,
                                        allow_tf32=torch.backends.cudnn.allow_tf32):
            return [self._spatialize_one(m, p) for m, p in zip(mono, prompts)]

    def _spatialize_one(self, m: np.ndarray, prompt: str) -> np.ndarray:
        """One clip, computed independently of any other clip of the batch.

        A clip's windows go through the network in chunks of :data:`INFER_BATCH` in order,
        with the prompt repeated per window, so the shapes of every forward (and hence the
        BLAS/oneDNN reduction order) depend on this clip alone: the same clip gives the same
        bytes whatever batch it was submitted in.
        """
        cfg = self.cfg
        width = cfg.window_samples
        hop = max(1, int(round(cfg.infer_hop_s * cfg.sample_rate)))
        x = m if m.shape[0] >= width else np.pad(m, (0, width - m.shape[0]))
        starts = window_starts(x.shape[0], width, hop)
        gains, windows = [], []
        for s in starts:
            w = x[s: s + width]
            rms = float(np.sqrt(np.mean(np.square(w, dtype=np.float64))))
            gain = cfg.target_rms / rms if rms > 1e-8 else 1.0
            gains.append(gain)
            windows.append((w * gain).astype(np.float32))
        diff = np.zeros_like(x)
        count = np.zeros_like(x)
        for b in range(0, len(windows), INFER_BATCH):
            mix = torch.from_numpy(np.stack(windows[b: b + INFER_BATCH])).to(self.device)
            spec, _ = self.net(mix, [prompt] * mix.shape[0])
            d = self.net.stft.inverse(spec, width).cpu().numpy()
            for k, (s, gain) in enumerate(zip(starts[b: b + INFER_BATCH], gains[b: b + INFER_BATCH])):
                diff[s: s + width] += d[k] / gain
                count[s: s + width] += 1.0
        dd = (diff / np.maximum(count, 1.0))[: m.shape[0]]
        return compose_binaural(m, dd.astype(np.float32))


def load_checkpoint_dir(path: str | Path, *, name: str | None = None,
                        expect_sha256: str | None = None, device: str = "cpu",
                        kinds: tuple[str, ...] | None = KINDS) -> PseudoBinauralSystem:
    """Load ``model.safetensors`` + ``config.json`` (+ ``run.json``) from a run or shipped folder.

    Refuses (TasBenchError, one line) a missing or corrupted file, a checkpoint whose sha256
    differs from ``expect_sha256`` or from its ``run.json``, a checkpoint of another system kind
    or written for another config than ``config.json`` (see :func:`tas_bench.runtime.runs.open_model_dir`).
    """
    md = open_model_dir(path, fmt=FORMAT, what=WHAT, kinds=kinds, expect_sha256=expect_sha256)
    cfg = config_from_dict(md.config, where=str(md.root / "config.json"))
    md.check_model(kind=cfg.kind, model_hash=cfg.model_hash())
    net = build_model(cfg, vocab_from_meta(md.meta))
    check_text_encoder_meta(net.text_encoder, md.meta, cfg.t5_path)
    try:
        net.load_state_dict(md.tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise TasBenchError(f"checkpoint does not fit the network of config.json ({first})",
                            path=md.model_path) from None
    return PseudoBinauralSystem(net, cfg, name=name or md.record.get("name") or cfg.kind,
                                checkpoint_sha256=md.sha256, record=md.record, device=device)


def load_demo(device: str = "cpu") -> PseudoBinauralSystem:
    """The shipped ``pseudobinaural-demo`` checkpoint (trained on the demo simulated data)."""
    root = Path(__file__).resolve().parent.parent / "checkpoints" / "pseudobinaural-demo"
    return load_checkpoint_dir(root, name="pseudobinaural-demo", device=device)


def load_notext_demo(device: str = "cpu") -> PseudoBinauralSystem:
    """The shipped ``pseudobinaural-notext-demo`` ablation (same network and data, no text)."""
    root = Path(__file__).resolve().parent.parent / "checkpoints" / "pseudobinaural-notext-demo"
    return load_checkpoint_dir(root, name="pseudobinaural-notext-demo", device=device)
