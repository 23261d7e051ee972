"""TASPipeline: codec + text encoder + denoiser + scheduler + flipper, saved and loaded as one
folder, with ``spatialize`` for any input length; :class:`TASSystem` is the registry's wrapper.

Folder format (diffusers style, written atomically): ``tas_config.json`` (format, version,
the :class:`~baselines.tas.config.TASConfig`, the resolved U-Net config, codec config and
fingerprint, scheduler config, model hash) and ``model.safetensors`` (every trainable weight:
``unet.*``, ``text_encoder.*``, ``null_token``, ``flipper.*``; metadata: format, kind, model
hash, the text encoder's vocabulary or T5 fingerprint, the codec fingerprint). External frozen
weights (the AudioLDM2 VAE + vocoder, a frozen FLAN-T5) stay in their local folders and are
identified by fingerprint.

Text conditioning: the text encoder's per-token states (``tokens``, ``mask``) with a learned
null token prepended (so an empty prompt still has one key to attend to), padded to a fixed
length (the encoder's maximum + 1) so that the denoiser's shapes never depend on a batch's
longest prompt. At inference each distinct prompt is encoded on its own. The unconditional
branch of CFG (and a dropped condition in training) is all zeros for the text and the mono.

Sampling: each clip is cut into windows (:mod:`baselines.tas.windowing`), each window's mono is
normalised to ``target_rms``; initial noise per window from ``(seed, clip key, window index)``;
the clip key is the caller's (a clip id) or the sha256 of the clip's samples and prompt, so the
same clip gives the same bytes in any batch (the denoiser runs in fixed micro-batches).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from baselines.base import System, compose_binaural, validate_mono, validate_prompt
from baselines.tas.codec import Codec, build_codec
from baselines.tas.config import FORMAT, FORMAT_VERSION, KINDS, TASConfig, config_from_dict
from baselines.tas.diffusion import (
    check_sampling_args,
    ddim_sample,
    make_train_scheduler,
    unet_denoiser,
)
from baselines.tas.flipper import Flipper
from baselines.tas.losses import band_ild_loss, total_loss
from baselines.tas.unet import DOWNSAMPLE, build_unet, count_parameters, unet_config
from baselines.tas.windowing import merge_windows, plan_windows
from tas_bench.runtime.audio_io import resample
from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import sha256_file, write_json_atomic

CONFIG_FILE = "tas_config.json"
WEIGHTS_FILE = "model.safetensors"
#: The shortest mono input accepted (seconds): shorter clips carry no usable interaural cue.
MIN_SECONDS = 0.1


class TASModel(nn.Module):
    """The trainable modules: ``unet``, ``text_encoder``, ``null_token`` and ``flipper``."""

    def __init__(self, unet: nn.Module, text_encoder: nn.Module, flipper: Flipper | None) -> None:
        super().__init__()
        self.unet = unet
        self.text_encoder = text_encoder
        self.null_token = nn.Parameter(torch.zeros(int(text_encoder.token_dim)))
        self.flipper = flipper


def _text_length(enc: nn.Module) -> int:
    for name in ("max_tokens", "max_length"):
        v = getattr(enc, name, None)
        if isinstance(v, int) and v > 0:
            return v
    raise TasBenchError("text encoder has no max_tokens / max_length")


def build_text_encoder_from(cfg: dict[str, Any], vocab: list[str] | None) -> nn.Module:
    """The text encoder described by the config's ``text_encoder`` object (shared module)."""
    from tas_bench.runtime.text import build_text_encoder

    args = {k: v for k, v in cfg.items() if k != "kind"}
    return build_text_encoder(cfg["kind"], vocab=vocab, **args)


class TASPipeline:
    """A TAS model ready to train (``training_loss``) or sample (``spatialize``)."""

    def __init__(self, config: TASConfig, codec: Codec, model: TASModel) -> None:
        self.config = config.validate()
        self.codec = codec
        self.model = model
        self.device = torch.device("cpu")
        self.train_scheduler = make_train_scheduler(config.scheduler)
        self.checkpoint_sha256: str | None = None
        self.record: dict[str, Any] = {}

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def build(cls, config: TASConfig, *, vocab: list[str] | None = None,
              codec: Codec | None = None, text_encoder: nn.Module | None = None) -> TASPipeline:
        """A fresh, randomly initialised pipeline for ``config`` (``vocab`` for the scratch
        text encoder; a prebuilt ``codec`` / ``text_encoder`` may be passed in)."""
        config.validate()
        codec = codec or build_codec(config.codec)
        enc = text_encoder or build_text_encoder_from(config.text_encoder, vocab)
        ucfg = unet_config(config.unet_spec(), codec.latent_channels, int(enc.token_dim))
        if codec.latent_width % DOWNSAMPLE:
            raise TasBenchError(f"the codec's latent width {codec.latent_width} is not a multiple of "
                                f"{DOWNSAMPLE}", field="codec")
        flipper = (Flipper(codec.latent_channels, int(enc.token_dim), **config.flipper)
                   if config.use_flipper and config.flipper is not None else None)
        unet = build_unet(ucfg, prior_skip=bool(config.unet_spec().get("prior_skip", False)))
        return cls(config, codec, TASModel(unet, enc, flipper))

    def to(self, device: str | torch.device) -> TASPipeline:
        """Move the model and the codec's weights to ``device``."""
        self.device = torch.device(device)
        self.model.to(self.device)
        self.codec.to(self.device)
        return self

    @property
    def sample_rate(self) -> int:
        return self.codec.sample_rate

    @property
    def window_samples(self) -> int:
        """Samples per model window."""
        return self.codec.window_samples(self.config.latent_frames)

    @property
    def overlap_samples(self) -> int:
        """Samples of cross-fade between consecutive windows (at most half a window)."""
        return min(int(round(self.config.window_overlap_s * self.sample_rate)), self.window_samples // 2)

    def unet_config(self) -> dict[str, Any]:
        return dict(self.model.unet.config)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters of each trainable part and in total."""
        m = self.model
        out = {"unet": count_parameters(m.unet), "text_encoder": count_parameters(m.text_encoder),
               "flipper": count_parameters(m.flipper) if m.flipper is not None else 0}
        out["total"] = count_parameters(m)
        return out

    # -- text ------------------------------------------------------------------------------
    def encode_text(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens ``(B, 1 + L, D)`` (learned null token first) and mask ``(B, 1 + L)`` bool,
        padded to the encoder's fixed maximum L. Gradients reach the text encoder."""
        ps = [p if self.config.use_text else "" for p in prompts]
        enc = self.model.text_encoder
        out = enc.encode(list(ps))
        tokens, mask = out.tokens, out.mask.bool()
        length = _text_length(enc)
        tokens, mask = tokens[:, :length], mask[:, :length]
        if tokens.shape[1] < length:
            pad = length - tokens.shape[1]
            tokens = torch.cat([tokens, tokens.new_zeros(tokens.shape[0], pad, tokens.shape[2])], 1)
            mask = torch.cat([mask, mask.new_zeros(mask.shape[0], pad)], 1)
        null = self.model.null_token.to(tokens)[None, None].expand(tokens.shape[0], 1, -1)
        tokens = torch.cat([null, tokens * mask[..., None].to(tokens.dtype)], 1)
        mask = torch.cat([mask.new_ones(mask.shape[0], 1), mask], 1)
        return tokens, mask

    def _encode_prompts_each(self, prompts: Sequence[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        out = {}
        for p in dict.fromkeys(prompts):
            tok, mask = self.encode_text([p])
            out[p] = (tok[0], mask[0])
        return out

    # -- training --------------------------------------------------------------------------
    def training_loss(self, mono: torch.Tensor, diff: torch.Tensor, prompts: Sequence[str], *,
                      generator: torch.Generator, snr_gamma: float = 0.0,
                      cue_weight: float = 0.0) -> dict[str, torch.Tensor]:
        """Losses of one batch of windows (``mono``, ``diff`` ``(B, n)`` at 16 kHz, n =
        :attr:`window_samples`, already gain-normalised): diffusion MSE (min-SNR weighted when
        ``snr_gamma > 0``) + lambda * flipper BCE + ``cue_weight`` * the interaural-cue loss
        (see :func:`baselines.tas.losses.total_loss`)."""
        if mono.shape != diff.shape or mono.ndim != 2 or mono.shape[1] != self.window_samples:
            raise TasBenchError(f"training windows must be (B, {self.window_samples}) for mono and "
                                f"difference, got {tuple(mono.shape)} and {tuple(diff.shape)}")
        if len(prompts) != mono.shape[0]:
            raise TasBenchError(f"{len(prompts)} prompts for {mono.shape[0]} windows")
        mono, diff = mono.to(self.device), diff.to(self.device)
        with torch.no_grad():
            zm = self.codec.encode_mono(mono)
            z0 = self.codec.encode_diff(diff, mono)
            # the latent of -d: relstft is linear in d, so it is exactly -z0 (no second STFT)
            zf = None
            if self.model.flipper is not None:
                zf = -z0 if self.codec.name == "relstft" else self.codec.encode_diff(-diff, mono)
        tokens, mask = self.encode_text(prompts)
        return total_loss(unet_denoiser(self.model.unet), self.train_scheduler, z0, zm, tokens, mask,
                          generator=generator, cond_dropout=self.config.cond_dropout,
                          flipper=self.model.flipper, z_flipped=zf,
                          flipper_lambda=self.config.flipper_lambda, snr_gamma=snr_gamma,
                          cue_weight=cue_weight,
                          cue_fn=(lambda zh, z: band_ild_loss(self.codec, zh, z, mono))
                          if cue_weight > 0 else None)

    # -- sampling --------------------------------------------------------------------------
    def sampling_args(self, steps: int | None, guidance_scale: float | None,
                      seed: int | None) -> tuple[int, float, int]:
        """Resolved (steps, guidance scale, seed): the arguments or the config's defaults."""
        st, sc = check_sampling_args(self.config.steps if steps is None else steps,
                                     self.config.guidance_scale if guidance_scale is None else guidance_scale)
        sd = self.config.seed if seed is None else seed
        if isinstance(sd, bool) or not isinstance(sd, int | np.integer):
            raise TasBenchError(f"seed {sd!r} must be an integer", field="seed")
        return st, sc, int(sd)

    def set_sampling(self, *, steps: int | None = None, guidance_scale: float | None = None,
                     seed: int | None = None, micro_batch: int | None = None,
                     timestep_spacing: str | None = None,
                     flipper_guidance: float | None = None) -> TASPipeline:
        """Change the default sampling settings (validated; the card records them; the
        model hash is unchanged)."""
        st, sc, sd = self.sampling_args(steps, guidance_scale, seed)
        if timestep_spacing is not None or flipper_guidance is not None:
            trial = self.config.to_dict()
            if timestep_spacing is not None:
                trial["scheduler"] = {**trial["scheduler"], "timestep_spacing": timestep_spacing}
            if flipper_guidance is not None:
                trial["flipper_guidance"] = float(flipper_guidance)
            checked = config_from_dict(trial, where="sampling")
            self.config.scheduler, self.config.flipper_guidance = checked.scheduler, checked.flipper_guidance
        mb = self.config.micro_batch if micro_batch is None else micro_batch
        if isinstance(mb, bool) or not isinstance(mb, int | np.integer) or not 1 <= int(mb) <= 4096:
            raise TasBenchError(f"micro_batch {mb!r} must be an integer in [1, 4096]", field="micro_batch")
        self.config.steps, self.config.guidance_scale = st, sc
        self.config.seed, self.config.micro_batch = sd, int(mb)
        return self

    @torch.no_grad()
    def generate(self, monos: Sequence[np.ndarray], prompts: Sequence[str], *,
                 keys: Sequence[str] | None = None, steps: int | None = None,
                 guidance_scale: float | None = None, seed: int | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 flipper_guidance: float | None = None) -> list[np.ndarray]:
        """Binaural ``(2, n)`` float32 for validated, non-silent 16 kHz mono arrays.

        ``keys``: one stable key per clip (e.g. its id) seeding its noise; default: the sha256
        of the clip's samples and prompt. ``flipper_guidance``: overrides the config's.
        """
        st, sc, sd = self.sampling_args(steps, guidance_scale, seed)
        min_n = int(MIN_SECONDS * self.sample_rate)
        for i, m in enumerate(monos):
            if m.shape[0] < min_n:
                raise TasBenchError(f"too short: {m.shape[0]} samples ({1000 * m.shape[0] / self.sample_rate:.1f} ms); "
                                    f"TAS needs at least {min_n} samples ({MIN_SECONDS:g} s)",
                                    field=f"mono input {i}")
        ps = [validate_prompt(p, what=f"prompt {i}") for i, p in enumerate(prompts)]
        if keys is None:
            keys = [clip_key(m, p) for m, p in zip(monos, ps)]
        width, overlap = self.window_samples, self.overlap_samples
        wins, windows, starts = plan_windows(list(monos), width, overlap, self.config.target_rms)
        text = self._encode_prompts_each([ps[w.clip] for w in wins])
        tokens = torch.stack([text[ps[w.clip]][0] for w in wins]).to(self.device)
        tmask = torch.stack([text[ps[w.clip]][1] for w in wins]).to(self.device)
        mono_t = torch.from_numpy(windows).to(self.device)
        zm = self.codec.encode_mono(mono_t)
        self.model.eval()
        guide = None
        fg = self.config.flipper_guidance if flipper_guidance is None else float(flipper_guidance)
        if fg > 0 and self.model.flipper is not None:
            guide = self._flipper_guide(zm, tokens, tmask, fg)
        z = ddim_sample(unet_denoiser(self.model.unet), zm, tokens, tmask,
                        [(str(keys[w.clip]), w.index) for w in wins], seed=sd, steps=st,
                        guidance_scale=sc, micro_batch=self.config.micro_batch,
                        scheduler_cfg=self.config.scheduler, progress=progress, x0_guide=guide)
        d = self.codec.decode_diff(z, mono_t).cpu().numpy().astype(np.float64)
        gains = np.array([w.gain for w in wins])
        d = d / gains[:, None]
        out = []
        for i, m in enumerate(monos):
            rows = [k for k, w in enumerate(wins) if w.clip == i]
            dd = merge_windows(d[rows], starts[i], width, overlap, m.shape[0])
            out.append(compose_binaural(m, dd))
        return out

    def _flipper_guide(self, zm: torch.Tensor, tokens: torch.Tensor, tmask: torch.Tensor,
                       step: float) -> Callable[[torch.Tensor], torch.Tensor]:
        """Flipper guidance (see :class:`~baselines.tas.config.TASConfig`): for latents ``x0
        (N, C, H, W)`` the shift ``step * g / rms(g)`` per window, ``g`` the gradient of
        ``log sigmoid(flipper(x0, mono, text))`` with respect to ``x0``, computed in the
        config's fixed micro-batches (padded), so a window's shift never depends on its batch."""
        flipper, mb = self.model.flipper, self.config.micro_batch

        def guide(x0: torch.Tensor) -> torch.Tensor:
            out = []
            for b in range(0, x0.shape[0], mb):
                k = min(mb, x0.shape[0] - b)
                xs, ms, ts, ks = (_pad_rows(v[b:b + k], mb) for v in (x0, zm, tokens, tmask))
                with torch.enable_grad():
                    xg = xs.detach().requires_grad_(True)
                    logp = torch.nn.functional.logsigmoid(flipper(xg, ms, ts, ks)).sum()
                    (g,) = torch.autograd.grad(logp, xg)
                rms = g.square().mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp(min=1e-12)
                out.append((step * g / rms)[:k].detach())
            return torch.cat(out, 0)
        return guide

    def spatialize(self, mono: np.ndarray, prompt: str, sr: int, *, steps: int | None = None,
                   guidance_scale: float | None = None, seed: int | None = None,
                   key: str | None = None) -> np.ndarray:
        """Binaural ``(2, T')`` at 16 kHz for one mono clip at ``sr`` Hz (resampled if needed;
        silence gives silence; NaN/Inf, empty or too short inputs are errors)."""
        return TASSystem(self).spatialize_batch([mono], [prompt], sr, steps=steps,
                                                guidance_scale=guidance_scale, seed=seed,
                                                keys=None if key is None else [key])[0]

    # -- save / load -----------------------------------------------------------------------
    def _document(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": self.config.kind,
                "config": self.config.to_dict(), "model_hash": self.config.model_hash(),
                "unet_config": self.unet_config(), "codec": self.codec.config(),
                "codec_fingerprint": self.codec.fingerprint(), "scheduler": dict(self.config.scheduler),
                "flipper": self.model.flipper.config if self.model.flipper is not None else None}

    def _meta(self) -> dict[str, str]:
        from tas_bench.runtime.text import text_encoder_meta

        meta = {"format": FORMAT, "kind": self.config.kind, "model_hash": self.config.model_hash()}
        if self.codec.fingerprint():
            meta["codec_fingerprint"] = str(self.codec.fingerprint())
        meta.update(text_encoder_meta(self.model.text_encoder))
        return meta

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every trainable tensor, contiguous on the CPU (what ``model.safetensors`` holds)."""
        return {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``tas_config.json`` and ``model.safetensors`` into ``folder`` (atomically each)."""
        from tas_bench.runtime.runs import save_model

        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        save_model(root / WEIGHTS_FILE, self.state_dict(), self._meta(), fmt=FORMAT)
        write_json_atomic(root / CONFIG_FILE, self._document())
        return root

    @classmethod
    def from_pretrained(cls, folder: str | Path, *, device: str | torch.device = "cpu",
                        kinds: Sequence[str] = KINDS, codec_path: str | None = None,
                        t5_path: str | None = None, expect_sha256: str | None = None) -> TASPipeline:
        """Load a folder written by :meth:`save_pretrained`.

        Refuses (one-line :class:`TasBenchError`) a missing folder or file, a corrupted weights
        file, a checkpoint of another kind or format, weights written for another config
        (model hash), weights that do not fit the network, and a codec or FLAN-T5 folder other
        than the one trained with. ``codec_path`` / ``t5_path`` point the external folders
        elsewhere (the fingerprints must still match).
        """
        root = Path(folder)
        if not root.is_dir():
            raise TasBenchError("TAS checkpoint folder not found", path=root)
        cfg_path = root / CONFIG_FILE
        if not cfg_path.is_file():
            other = " (it has a config.json: a checkpoint of another system kind?)" \
                if (root / "config.json").is_file() else ""
            raise TasBenchError(f"not a TAS checkpoint: no {CONFIG_FILE}{other}", path=root)
        try:
            doc = json.loads(cfg_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise TasBenchError(f"unreadable or invalid JSON ({exc})", path=cfg_path) from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise TasBenchError(f"not a TAS pipeline config (format {doc.get('format') if isinstance(doc, dict) else None!r})",
                                path=cfg_path)
        if doc.get("format_version") != FORMAT_VERSION:
            raise TasBenchError(f"unsupported TAS format version {doc.get('format_version')!r} "
                                f"(this code reads {FORMAT_VERSION})", path=cfg_path)
        kind = (doc.get("config") or {}).get("kind")
        if kind not in kinds:
            raise TasBenchError(f"checkpoint of another kind {kind!r} (expected one of {list(kinds)})",
                                path=cfg_path)
        cdict = dict(doc["config"])
        if codec_path is not None:
            cdict["codec"] = {**cdict["codec"], "path": codec_path}
        if t5_path is not None:
            cdict["text_encoder"] = {**cdict["text_encoder"], "t5_path": t5_path}
        cfg = config_from_dict(cdict, where=str(cfg_path))
        if doc.get("model_hash") != cfg.model_hash():
            raise TasBenchError("tas_config.json was edited: its config does not give its model hash",
                                path=cfg_path)
        wpath = root / WEIGHTS_FILE
        if not wpath.is_file():
            raise TasBenchError(f"no {WEIGHTS_FILE} (has training finished?)", path=root)
        sha = sha256_file(wpath)
        if expect_sha256 and sha != expect_sha256:
            raise TasBenchError(f"weights sha256 {sha[:12]}… differ from the registered "
                                f"{expect_sha256[:12]}…: modified or corrupted", path=wpath)
        from tas_bench.runtime.runs import read_model

        tensors, meta = read_model(wpath, fmt=FORMAT, what="TAS")
        if meta.get("kind") != cfg.kind:
            raise TasBenchError(f"weights of another kind ({meta.get('kind')!r}; the config says "
                                f"{cfg.kind!r})", path=wpath)
        if meta.get("model_hash") != cfg.model_hash():
            raise TasBenchError("weights were written for another config than tas_config.json "
                                "(model hash differs)", path=wpath)
        codec = build_codec(cfg.codec)
        if (codec.fingerprint() or None) != (meta.get("codec_fingerprint") or None):
            raise TasBenchError("the codec folder differs from the one this checkpoint was trained "
                                "with (fingerprint)", path=cfg.codec.get("path") or wpath)
        from tas_bench.runtime.text import check_text_encoder_meta, vocab_from_meta

        enc = build_text_encoder_from(cfg.text_encoder, vocab_from_meta(meta))
        check_text_encoder_meta(enc, meta, cfg.text_encoder.get("t5_path"))
        pipe = cls.build(cfg, codec=codec, text_encoder=enc)
        try:
            pipe.model.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise TasBenchError(f"weights do not fit the network of tas_config.json ({first})",
                                path=wpath) from None
        pipe.checkpoint_sha256 = sha
        return pipe.to(device)

    def card(self, name: str = "tas") -> dict[str, Any]:
        """The system card: kind, parameters, codec (honestly named), sampling settings."""
        cfg = self.config
        codec = self.codec.config()
        codec_desc = ("relstft: STFT of L-R relative to the mono (rotated by its phase, divided by "
                      "a smoothed envelope); exact given the mono, no learned codec"
                      if codec["type"] == "relstft" else
                      "AudioLDM2 VAE on the log-mel of L-R + HiFi-GAN vocoder (magnitude only)")
        return {
            "name": name,
            "kind": cfg.kind,
            "parameters": self.parameter_counts()["total"],
            "sample_rate": self.sample_rate,
            "description": (f"TAS latent diffusion on L-R ({codec_desc}); U-Net preset {cfg.preset}; "
                            f"text encoder {cfg.text_encoder['kind']}"
                            + ("" if cfg.use_text else " (no text: ablation)")
                            + ("" if cfg.use_flipper else "; no flipper (ablation)")),
            "codec": {k: v for k, v in codec.items() if k != "path"},
            "codec_fingerprint": self.codec.fingerprint(),
            "sampling": {"sampler": "DDIM", "steps": cfg.steps, "guidance_scale": cfg.guidance_scale,
                         **({"flipper_guidance": cfg.flipper_guidance} if cfg.flipper_guidance else {}),
                         **({"timestep_spacing": cfg.scheduler["timestep_spacing"]}
                            if cfg.scheduler.get("timestep_spacing", "leading") != "leading" else {}),
                         "seed": cfg.seed, "eta": 0.0, "micro_batch": cfg.micro_batch,
                         "window_s": self.window_samples / self.sample_rate,
                         "overlap_s": self.overlap_samples / self.sample_rate},
            "flipper_lambda": cfg.flipper_lambda if cfg.use_flipper else None,
            "checkpoint_sha256": self.checkpoint_sha256,
            "config": cfg.model_dict(),
        }


def _pad_rows(v: torch.Tensor, size: int) -> torch.Tensor:
    if v.shape[0] == size:
        return v
    pad = torch.zeros((size - v.shape[0], *v.shape[1:]), dtype=v.dtype, device=v.device)
    return torch.cat([v, pad], 0)


def clip_key(mono: np.ndarray, prompt: str) -> str:
    """Content key of a clip: sha256 of its float32 samples and its prompt."""
    h = hashlib.sha256(np.ascontiguousarray(mono, dtype=np.float32).tobytes())
    h.update(b"\0" + prompt.encode("utf-8"))
    return h.hexdigest()


class TASSystem(System):
    """A :class:`TASPipeline` as a registry :class:`~baselines.base.System` (16 kHz)."""

    def __init__(self, pipeline: TASPipeline, name: str | None = None,
                 record: dict[str, Any] | None = None) -> None:
        self.pipeline = pipeline
        self.name = name or pipeline.config.kind
        self.sample_rate = pipeline.sample_rate
        self.record = dict(record or {})

    @property
    def checkpoint_sha256(self) -> str | None:
        return self.pipeline.checkpoint_sha256

    @property
    def model_hash(self) -> str:
        return self.pipeline.config.model_hash()

    def card(self) -> dict[str, Any]:
        from tas_bench.runtime.runs import revision

        card = self.pipeline.card(self.name)
        card["revision"] = revision(self.checkpoint_sha256 or "", self.model_hash)
        card["training_data"] = self.record.get("data_fingerprint")
        card["licence"] = self.record.get("licence", "Apache-2.0")
        card["steps"] = self.record.get("steps")
        return card

    def _spatialize(self, mono: list[np.ndarray], prompts: list[str]) -> list[np.ndarray]:
        return self.pipeline.generate(mono, prompts)

    def spatialize_batch(self, mono: list[np.ndarray], prompts: list[str], sample_rate: int, *,
                         steps: int | None = None, guidance_scale: float | None = None,
                         seed: int | None = None, keys: Sequence[str] | None = None) -> list[np.ndarray]:
        """As :meth:`System.spatialize_batch`, with optional sampling overrides and clip keys."""
        self.pipeline.sampling_args(steps, guidance_scale, seed)  # bad values fail before any work
        if keys is None and steps is None and guidance_scale is None and seed is None:
            return super().spatialize_batch(mono, prompts, sample_rate)
        if keys is not None and len(keys) != len(mono):
            raise TasBenchError(f"{len(keys)} keys for {len(mono)} clips")
        if len(mono) != len(prompts):
            raise TasBenchError(f"{len(mono)} waveforms but {len(prompts)} prompts")
        if not isinstance(sample_rate, int | np.integer) or not 1000 <= int(sample_rate) <= 384000:
            raise TasBenchError(f"sample rate {sample_rate!r} out of range [1000, 384000] Hz")
        xs = []
        for i, x in enumerate(mono):
            arr = validate_mono(x, what=f"mono input {i}")
            if int(sample_rate) != self.sample_rate:
                arr = resample(arr, int(sample_rate), self.sample_rate).astype(np.float32)
            xs.append(arr)
        results: list[np.ndarray | None] = [None] * len(xs)
        todo = [i for i, x in enumerate(xs) if np.any(x)]
        for i, x in enumerate(xs):
            if i not in todo:
                results[i] = np.zeros((2, x.shape[0]), dtype=np.float32)
        if todo:
            outs = self.pipeline.generate([xs[i] for i in todo], [prompts[i] for i in todo],
                                          keys=None if keys is None else [keys[i] for i in todo],
                                          steps=steps, guidance_scale=guidance_scale, seed=seed)
            for i, y in zip(todo, outs):
                results[i] = y
        return [r for r in results if r is not None]
