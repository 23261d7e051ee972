"""PseudoBinaural configuration: network preset, STFT, text encoder and training settings.

A config is plain data (JSON/TOML-able). ``resolve_config`` starts from a preset (``cpu`` or
``paper``), applies a user file (``.json`` or ``.toml``) and command-line overrides, and checks
every field, so a typo is an error that names the field instead of a silently ignored key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import stable_hash

#: The system kinds this package trains.
KINDS = ("pseudobinaural", "pseudobinaural-notext")


@dataclass
class PBConfig:
    """All settings of a PseudoBinaural run (units in the field names or comments)."""

    kind: str = "pseudobinaural"
    preset: str = "cpu"
    # signal: 0.63 s windows at 16 kHz, STFT as in Mono2Binaural -> 256 x 64 (last bin dropped)
    sample_rate: int = 16000
    window_samples: int = 10080
    n_fft: int = 512
    hop_length: int = 160
    win_length: int = 400
    infer_hop_s: float = 0.1  # sliding-window hop at inference (PseudoBinaural test scripts)
    target_rms: float = 0.1  # per-window RMS of the mix after normalisation
    # network (defaults = the "cpu" preset: a quarter of the paper's widths, for 2-core training)
    channels: list[int] = field(default_factory=lambda: [8, 16, 32, 64, 64])
    text_proj_dim: int = 32  # text vector projected to this many channels at the bottleneck
    film: bool = True  # FiLM the decoder layers with the text vector as well
    # text encoder: "scratch" (word tokens + GRU, trained with the model) or "t5" (local folder)
    text_encoder: str = "scratch"
    text_dim: int = 128
    word_dim: int = 64
    max_tokens: int = 48
    vocab_min_count: int = 1
    t5_path: str | None = None
    t5_max_length: int = 64
    use_text: bool = True  # False = the no-text ablation (prompt always empty)
    # training
    seed: int = 0
    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 5e-4
    val_every: int = 200
    val_windows: int = 64
    checkpoint_every: int = 200
    keep_checkpoints: int = 2
    mixed_precision: str = "no"  # "no" | "fp16" | "bf16" (GPU); forced "no" on CPU
    torch_threads: int = 0  # 0 = leave torch's default

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def model_dict(self) -> dict[str, Any]:
        """The fields that define the network and its signal processing (what a checkpoint needs)."""
        keep = ("kind", "sample_rate", "window_samples", "n_fft", "hop_length", "win_length",
                "infer_hop_s", "target_rms", "channels", "text_proj_dim", "film", "text_encoder",
                "text_dim", "word_dim", "max_tokens", "t5_max_length", "use_text")
        d = self.to_dict()
        return {k: d[k] for k in keep}

    def model_hash(self) -> str:
        return stable_hash(self.model_dict())

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2

    @property
    def n_frames(self) -> int:
        return self.window_samples // self.hop_length + 1


PRESETS: dict[str, dict[str, Any]] = {
    "cpu": {},
    "paper": {"channels": [64, 128, 256, 512, 512], "text_proj_dim": 784, "film": False,
              "batch_size": 256, "steps": 100000, "val_every": 2000, "checkpoint_every": 2000},
    "tiny": {"channels": [4, 8, 8, 16, 16], "text_proj_dim": 8, "text_dim": 16, "word_dim": 8,
             "batch_size": 4, "steps": 20, "val_every": 10, "val_windows": 4,
             "checkpoint_every": 10},
}


def _check(cfg: PBConfig) -> PBConfig:
    def bad(fld: str, msg: str) -> TasBenchError:
        return TasBenchError(msg, field=f"config.{fld}")

    if cfg.kind not in KINDS:
        raise bad("kind", f"{cfg.kind!r} is not one of {list(KINDS)}")
    if cfg.text_encoder not in ("scratch", "t5"):
        raise bad("text_encoder", f"{cfg.text_encoder!r} is not 'scratch' or 't5'")
    if cfg.text_encoder == "t5" and not cfg.t5_path:
        raise bad("t5_path", "text_encoder 't5' needs t5_path: a local FLAN-T5 folder")
    if len(cfg.channels) != 5 or any(int(c) < 1 for c in cfg.channels):
        raise bad("channels", "expected 5 positive channel widths (5 down-convs)")
    if cfg.n_fft // 2 % 32 or (cfg.window_samples // cfg.hop_length + 1) % 32:
        raise bad("window_samples", "the STFT must be a multiple of 32 in frequency and time "
                  f"(got {cfg.n_fft // 2} x {cfg.window_samples // cfg.hop_length + 1})")
    if cfg.mixed_precision not in ("no", "fp16", "bf16"):
        raise bad("mixed_precision", f"{cfg.mixed_precision!r} is not no|fp16|bf16")
    for name in ("steps", "batch_size", "val_every", "checkpoint_every", "keep_checkpoints",
                 "val_windows", "max_tokens", "text_dim", "word_dim", "text_proj_dim"):
        if int(getattr(cfg, name)) < 1:
            raise bad(name, "must be >= 1")
    if not 0 < cfg.infer_hop_s <= cfg.window_samples / cfg.sample_rate:
        raise bad("infer_hop_s", "must be in (0, window length]")
    if cfg.lr <= 0:
        raise bad("lr", "must be > 0")
    if cfg.kind == "pseudobinaural-notext":
        cfg.use_text = False
    return cfg


def config_from_dict(d: dict[str, Any], *, where: str = "config") -> PBConfig:
    """Build and check a :class:`PBConfig` from a dict; unknown keys are errors."""
    names = {f.name for f in fields(PBConfig)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise TasBenchError(f"unknown config field(s) {unknown}; known: {sorted(names)}", path=where)
    try:
        cfg = PBConfig(**d)
    except TypeError as exc:
        raise TasBenchError(f"bad config ({exc})", path=where) from None
    for f in fields(PBConfig):
        v = getattr(cfg, f.name)
        default = getattr(PBConfig(), f.name)
        if default is not None and v is not None and not isinstance(v, type(default)) and not (
                isinstance(default, float) and isinstance(v, int) and not isinstance(v, bool)):
            raise TasBenchError(f"expected {type(default).__name__}, got {type(v).__name__}",
                                path=where, field=f.name)
    return _check(cfg)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.json`` or ``.toml`` config file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise TasBenchError("config file not found", path=p)
    try:
        if p.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                raise TasBenchError("TOML configs need Python >= 3.11; use JSON", path=p) from None
            obj = tomllib.loads(p.read_text(encoding="utf-8"))
        else:
            obj = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, ValueError, UnicodeDecodeError) as exc:
        raise TasBenchError(f"malformed config ({exc})", path=p) from None
    if not isinstance(obj, dict):
        raise TasBenchError("expected a JSON object", path=p)
    return obj


def resolve_config(kind: str, config_file: str | Path | None = None,
                   overrides: dict[str, Any] | None = None) -> PBConfig:
    """Preset (from the file's ``preset`` or ``cpu``) <- file <- overrides, checked."""
    user = load_config_file(config_file) if config_file else {}
    over = {k: v for k, v in (overrides or {}).items() if v is not None}
    preset = over.get("preset", user.get("preset", "cpu"))
    if preset not in PRESETS:
        raise TasBenchError(f"unknown preset {preset!r}; known: {sorted(PRESETS)}", field="preset")
    d: dict[str, Any] = {**PRESETS[preset], **user, **over, "kind": kind, "preset": preset}
    return config_from_dict(d, where=str(config_file or "config"))
