"""TAS model configuration: kinds, presets, validation and the model hash.

Kinds: ``tas`` (text + flipper), ``tas-notext`` (every prompt replaced by ``""``: the "w/o
text" ablation) and ``tas-noflip`` (no flipper: the "w/o flipper" ablation).

Presets:

* ``paper``: the ``audioldm2`` codec (a local snapshot: ``codec.path``), the paper's U-Net
  widths, FLAN-T5 from a local folder (``text_encoder.t5_path``; fine-tuned by the coherence
  loss), 10.24 s windows (256 latent rows = 1024 mel frames), DDIM 200 steps.
* ``cpu``: the exact ``relstft`` codec, the narrow U-Net of the same structure, the scratch
  text encoder, 2.03 s windows (32 latent rows = 128 STFT frames, fold 4), DDIM 25 steps.

Fields that shape the network (kind, codec, unet, text encoder, window length, flipper) enter
:meth:`TASConfig.model_hash`; sampling fields (steps, guidance scale, seed, micro-batch,
overlap) may change at inference without a new model.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from baselines.tas.codec import build_codec
from baselines.tas.diffusion import (
    COND_DROPOUT,
    GUIDANCE_SCALE,
    check_sampling_args,
    check_scheduler_config,
    scheduler_config,
)
from baselines.tas.unet import DOWNSAMPLE, PRESETS
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import stable_hash

KINDS = ("tas", "tas-notext", "tas-noflip")
FORMAT = "tas-pipeline"
FORMAT_VERSION = 1

PRESET_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": {
        "codec": {"type": "audioldm2", "path": ""},
        "text_encoder": {"kind": "t5", "t5_path": "", "text_dim": 1024, "t5_max_length": 128,
                         "finetune": True},
        "latent_frames": 256,
        "window_overlap_s": 1.0,
        "steps": 200,
        "micro_batch": 32,
        "flipper": {"width": 128, "hidden": 256},
    },
    "cpu": {
        "codec": {"type": "relstft"},
        "text_encoder": {"kind": "scratch", "text_dim": 64, "word_dim": 32, "max_tokens": 48},
        "latent_frames": 32,
        "window_overlap_s": 0.25,
        "steps": 25,
        "micro_batch": 8,
        "flipper": {"width": 32, "hidden": 64},
    },
}


@dataclass
class TASConfig:
    """Everything that defines a TAS model and its default sampling (see module docstring)."""

    kind: str = "tas"
    preset: str = "cpu"
    codec: dict[str, Any] = field(default_factory=lambda: {"type": "relstft"})
    #: overrides of the preset's U-Net spec (block_out_channels, layers_per_block, heads,
    #: norm_num_groups)
    unet: dict[str, Any] = field(default_factory=dict)
    text_encoder: dict[str, Any] = field(default_factory=lambda: dict(PRESET_DEFAULTS["cpu"]["text_encoder"]))
    latent_frames: int = 32
    window_overlap_s: float = 0.25
    target_rms: float = 0.1
    scheduler: dict[str, Any] = field(default_factory=scheduler_config)
    cond_dropout: float = COND_DROPOUT
    flipper: dict[str, Any] | None = field(default_factory=lambda: dict(PRESET_DEFAULTS["cpu"]["flipper"]))
    flipper_lambda: float = 1.0
    steps: int = 25
    guidance_scale: float = GUIDANCE_SCALE
    #: flipper guidance at sampling (:meth:`TASPipeline.generate`): the step, in latent RMS
    #: units, by which each DDIM step moves the clean-latent estimate up the gradient of the
    #: flipper's log p(audio matches text); 0 = off (the paper's sampler). A sampling field.
    flipper_guidance: float = 0.0
    seed: int = 0
    micro_batch: int = 8

    @property
    def use_text(self) -> bool:
        """False for the ``tas-notext`` ablation (every prompt becomes ``""``)."""
        return self.kind != "tas-notext"

    @property
    def use_flipper(self) -> bool:
        """False for the ``tas-noflip`` ablation or a zero weight."""
        return self.kind != "tas-noflip" and self.flipper is not None and self.flipper_lambda > 0

    def unet_spec(self) -> dict[str, Any]:
        """The preset's U-Net spec with this config's overrides."""
        return {**PRESETS[self.preset], **self.unet}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy of every field."""
        return copy.deepcopy(asdict(self))

    def model_dict(self) -> dict[str, Any]:
        """The fields that shape the network (what :meth:`model_hash` covers)."""
        codec = {k: v for k, v in self.codec.items() if k != "path"}  # the folder's identity is
        text = {k: v for k, v in self.text_encoder.items() if k != "t5_path"}  # its fingerprint
        return {"kind": self.kind, "preset": self.preset, "codec": codec, "unet": self.unet_spec(),
                "text_encoder": text, "latent_frames": self.latent_frames,
                "flipper": self.flipper if self.use_flipper else None}

    def model_hash(self) -> str:
        """sha256 of :meth:`model_dict` (canonical JSON)."""
        return stable_hash(self.model_dict())

    def validate(self) -> TASConfig:
        """Check every field; raises :class:`TasBenchError` naming the first bad one."""
        if self.kind not in KINDS:
            raise TasBenchError(f"unknown TAS kind {self.kind!r}; known: {list(KINDS)}", field="kind")
        if self.preset not in PRESETS:
            raise TasBenchError(f"unknown preset {self.preset!r}; known: {sorted(PRESETS)}", field="preset")
        if not isinstance(self.codec, dict) or self.codec.get("type") not in ("relstft", "audioldm2"):
            raise TasBenchError(f"codec.type must be 'relstft' or 'audioldm2', got {self.codec!r}",
                                field="codec.type")
        if self.codec["type"] == "relstft":  # resolve the defaults: they shape the latent
            self.codec = build_codec(self.codec).config()
        if not isinstance(self.text_encoder, dict) or self.text_encoder.get("kind") not in ("scratch", "t5"):
            raise TasBenchError("text_encoder.kind must be 'scratch' or 't5'", field="text_encoder.kind")
        if not isinstance(self.latent_frames, int) or self.latent_frames < DOWNSAMPLE \
                or self.latent_frames % DOWNSAMPLE:
            raise TasBenchError(f"latent_frames {self.latent_frames!r} must be a positive multiple of "
                                f"{DOWNSAMPLE}", field="latent_frames")
        for name, lo, hi in (("window_overlap_s", 0.0, 60.0), ("target_rms", 1e-6, 10.0),
                             ("cond_dropout", 0.0, 1.0), ("flipper_lambda", 0.0, 1e6),
                             ("flipper_guidance", 0.0, 100.0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) \
                    or not lo <= v <= hi:
                raise TasBenchError(f"{v!r} out of range [{lo:g}, {hi:g}]", field=name)
        if self.flipper is not None and not isinstance(self.flipper, dict):
            raise TasBenchError("flipper must be an object (width, hidden) or null", field="flipper")
        check_sampling_args(self.steps, self.guidance_scale)
        check_scheduler_config(self.scheduler)
        if self.flipper_guidance > 0 and not self.use_flipper:
            raise TasBenchError("flipper_guidance needs a flipper (not the tas-noflip kind, "
                                "flipper_lambda > 0)", field="flipper_guidance")
        if isinstance(self.micro_batch, bool) or not isinstance(self.micro_batch, int) \
                or not 1 <= self.micro_batch <= 4096:
            raise TasBenchError(f"micro_batch {self.micro_batch!r} must be an integer in [1, 4096]",
                                field="micro_batch")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TasBenchError(f"seed {self.seed!r} must be an integer", field="seed")
        return self


def config_from_dict(data: dict[str, Any], *, where: str = "config") -> TASConfig:
    """A validated :class:`TASConfig` from a dict; unknown fields are errors naming them."""
    if not isinstance(data, dict):
        raise TasBenchError("expected a JSON object", path=where)
    known = {f.name for f in fields(TASConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise TasBenchError(f"unknown TAS config field(s) {unknown}; known: {sorted(known)}", path=where)
    try:
        return TASConfig(**copy.deepcopy(data)).validate()
    except TasBenchError as exc:
        raise TasBenchError(exc.reason, path=where, field=exc.field, hint=exc.hint) from None


def preset_config(preset: str = "cpu", kind: str = "tas", **overrides: Any) -> TASConfig:
    """The preset's config for ``kind`` with field overrides (e.g. ``codec={"type": ..., "path": ...}``)."""
    if preset not in PRESET_DEFAULTS:
        raise TasBenchError(f"unknown preset {preset!r}; known: {sorted(PRESET_DEFAULTS)}", field="preset")
    base: dict[str, Any] = {"kind": kind, "preset": preset, **copy.deepcopy(PRESET_DEFAULTS[preset])}
    if kind == "tas-noflip":
        base["flipper"] = None
        base["flipper_lambda"] = 0.0
    base.update(overrides)
    return config_from_dict(base, where=f"preset {preset}")
