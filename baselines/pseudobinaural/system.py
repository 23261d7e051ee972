"""PseudoBinaural as a :class:`baselines.base.System`: load a checkpoint folder, spatialize.

Inference (REFERENCE.md §3): 0.63 s windows with a hop of ``infer_hop_s`` (0.1 s), the last
window aligned to the clip end; each window's mix is RMS-normalised to 0.1, the predicted
difference is scaled back, overlap-added and divided by the number of windows covering each
sample. The output is ``L = (m + d)/2``, ``R = (m - d)/2``, so ``L + R = m`` exactly (float
rounding); windowing only affects ``d``. A clip shorter than one window is zero-padded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from baselines.base import System, compose_binaural
from baselines.pseudobinaural.checkpoint import (
    CONFIG_FILE,
    MODEL_FILE,
    RUN_FILE,
    read_json,
    read_model,
    revision,
)
from baselines.pseudobinaural.config import PBConfig, config_from_dict
from baselines.pseudobinaural.model import PseudoBinauralNet
from baselines.pseudobinaural.text_encoder import ScratchTextEncoder, T5TextEncoder
from tas_bench.errors import TasBenchError
from tas_bench.fileio import sha256_file

#: Windows of one clip per forward pass at inference (clips are never mixed in a forward).
INFER_BATCH = 64


def build_model(cfg: PBConfig, vocab: list[str] | None) -> PseudoBinauralNet:
    """A fresh network for ``cfg`` (``vocab`` needed by the scratch text encoder)."""
    if cfg.text_encoder == "t5":
        enc: torch.nn.Module = T5TextEncoder(cfg.t5_path or "", cfg.text_dim, cfg.t5_max_length)
    else:
        if vocab is None:
            raise TasBenchError("the scratch text encoder needs a vocabulary", field="vocab")
        enc = ScratchTextEncoder(vocab, cfg.word_dim, cfg.text_dim, cfg.max_tokens)
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
    """Safetensors metadata written with the weights."""
    meta = {"kind": cfg.kind, "model_hash": cfg.model_hash()}
    enc = net.text_encoder
    if isinstance(enc, ScratchTextEncoder):
        meta["vocab"] = json.dumps(enc.vocab)
    if isinstance(enc, T5TextEncoder):
        meta["t5_fingerprint"] = enc.fingerprint
    return meta


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
                        kinds: tuple[str, ...] | None = None) -> PseudoBinauralSystem:
    """Load ``model.safetensors`` + ``config.json`` (+ ``run.json``) from a run or shipped folder.

    Refuses (TasBenchError, one line) a missing or corrupted file, a checkpoint whose sha256
    differs from ``expect_sha256`` or from its ``run.json``, a checkpoint of another system kind
    or written for another config than ``config.json``.
    """
    root = Path(path)
    if not root.is_dir():
        raise TasBenchError("checkpoint folder not found", path=root)
    model_path = root / MODEL_FILE
    if not model_path.is_file():
        raise TasBenchError("no model.safetensors (has training finished?)", path=root)
    record = read_json(root / RUN_FILE, "run record") if (root / RUN_FILE).is_file() else {}
    sha = sha256_file(model_path)
    for want, where in ((expect_sha256, "its registration"), (record.get("checkpoint_sha256"), "run.json")):
        if want and want != sha:
            raise TasBenchError(f"checkpoint sha256 {sha[:12]}… does not match {where} "
                                f"({want[:12]}…): modified or corrupted", path=model_path)
    cfg_dict = read_json(root / CONFIG_FILE, "config")
    if kinds is not None and cfg_dict.get("kind") not in kinds:
        raise TasBenchError(f"checkpoint of another system kind {cfg_dict.get('kind')!r} "
                            f"(expected one of {list(kinds)})", path=root / CONFIG_FILE)
    cfg = config_from_dict(cfg_dict, where=str(root / CONFIG_FILE))
    tensors, meta = read_model(model_path)
    if meta.get("kind") != cfg.kind:
        raise TasBenchError(f"checkpoint of another system ({meta.get('kind')!r}, config says "
                            f"{cfg.kind!r})", path=model_path)
    if meta.get("model_hash") != cfg.model_hash():
        raise TasBenchError("checkpoint was written for another config than config.json "
                            "(model hash differs)", path=model_path)
    vocab = json.loads(meta["vocab"]) if "vocab" in meta else None
    net = build_model(cfg, vocab)
    if "t5_fingerprint" in meta and getattr(net.text_encoder, "fingerprint", None) != meta["t5_fingerprint"]:
        raise TasBenchError("the FLAN-T5 folder differs from the one this checkpoint was trained "
                            "with", path=cfg.t5_path)
    try:
        net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise TasBenchError(f"checkpoint does not fit the network of config.json ({first})",
                            path=model_path) from None
    return PseudoBinauralSystem(net, cfg, name=name or record.get("name") or cfg.kind,
                                checkpoint_sha256=sha, record=record, device=device)


def load_demo(device: str = "cpu") -> PseudoBinauralSystem:
    """The shipped ``pseudobinaural-demo`` checkpoint (trained on the demo simulated data)."""
    root = Path(__file__).resolve().parent.parent / "checkpoints" / "pseudobinaural-demo"
    return load_checkpoint_dir(root, name="pseudobinaural-demo", device=device)


def load_notext_demo(device: str = "cpu") -> PseudoBinauralSystem:
    """The shipped ``pseudobinaural-notext-demo`` ablation (same network and data, no text)."""
    root = Path(__file__).resolve().parent.parent / "checkpoints" / "pseudobinaural-notext-demo"
    return load_checkpoint_dir(root, name="pseudobinaural-notext-demo", device=device)
