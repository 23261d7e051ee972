"""Codecs: waveform <-> the 2-D latent the TAS denoiser works on, for the mono mix and for ``d``.

Every codec maps a window of ``n`` samples at 16 kHz to a latent ``(B, C, H, W)`` laid out like
AudioLDM's mel images (H = time, W = frequency) and back. The model generates the latent of the
difference ``d = L - R``; the latent of the mono mix ``m = L + R`` is its condition (same shape,
concatenated on the channel axis).

* :class:`RelativeSTFTCodec` (``"relstft"``, the CPU default; no pretrained weights, no
  learning): the STFT of ``d`` *relative to the mono*: rotated by the mono's phase and divided
  by a smoothed envelope of the mono's magnitude,

      z = s * D * conj(M) / (|M| * E),     E = sqrt(smooth_{f,t}(|M|^2) + floor^2),

  on the fixed grid of a 512-point STFT (hop 256, Hann, 256 bins: the real Nyquist bin rides in
  the imaginary part of the real DC bin), Re/Im channels, folded ``fold x fold`` (pixel
  unshuffle) into channels. Given ``m`` it is exactly invertible (``D = z E M / (s |M|)``, then
  the inverse STFT): the round trip is float rounding. Unlike the ratio D/M it stays bounded at
  the notches of |M| (E is smooth), and its phase is the interaural transfer's phase relative to
  the mix (for one source, ~constant over time), so interaural time and level differences are
  kept. It is a change of basis, not a compressor: 2 real values per sample. The mono latent
  holds |M|/E and the log envelope (relative to the window's mean).
* :class:`AudioLDM2Codec` (``"audioldm2"``, the paper's): the log-mel of REFERENCE §5 (16 kHz,
  n_fft 1024, hop 160, win 1024, 64 Slaney mels 0-8000 Hz on the STFT magnitude, log of
  clamp(., 1e-5)), the AudioLDM2 VAE (8 latent channels, x4 in time and frequency, scaled by
  its ``scaling_factor``) and the SpeechT5HifiGan vocoder, loaded frozen from a local
  cvssp/audioldm2 snapshot. The mel keeps magnitudes only: the latents of ``d`` and ``-d`` are
  equal and the vocoder invents the phase, so it cannot carry ITD or the sign of ``d``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tas_bench.runtime.errors import TasBenchError
from tas_bench.runtime.fileio import sha256_file, stable_hash

SAMPLE_RATE = 16000


class Codec(ABC):
    """Waveform <-> latent for windows of :meth:`window_samples` samples at 16 kHz."""

    name: str = "codec"
    sample_rate: int = SAMPLE_RATE
    #: Channels of one latent (the difference's; the mono's has as many).
    latent_channels: int
    #: Size W of the latent's frequency axis.
    latent_width: int

    @abstractmethod
    def window_samples(self, latent_frames: int) -> int:
        """Samples of the window whose latent has ``latent_frames`` rows (the H axis)."""

    @abstractmethod
    def encode_mono(self, m: torch.Tensor) -> torch.Tensor:
        """``(B, n)`` mono windows -> ``(B, C, H, W)`` conditioning latents."""

    @abstractmethod
    def encode_diff(self, d: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``(B, n)`` difference windows (and their mono) -> ``(B, C, H, W)`` latents."""

    @abstractmethod
    def decode_diff(self, z: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` latents (and the mono windows ``(B, n)``) -> ``(B, n)`` differences."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """JSON-ready description that :func:`build_codec` turns back into this codec."""

    def fingerprint(self) -> str | None:
        """Identity of external weights the codec loads (None when it has none)."""
        return None

    def diff_spectrum(self, z: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """STFTs ``(D, M)``, each ``(B, F, K)`` complex, of the difference that latents ``z``
        decode to and of the mono windows ``m (B, n)``, differentiable in ``z``: what the
        interaural-cue loss (:func:`baselines.tas.losses.band_ild_loss`) compares. Only codecs
        that keep the interaural phase have one."""
        raise TasBenchError(f"the {self.name} codec keeps magnitudes only (no sign of d), so it "
                            "has no difference spectrum for the interaural-cue loss; use "
                            "cue_weight 0 or the relstft codec", field="cue_weight")

    def to(self, device: str | torch.device) -> Codec:
        """Move any weights to ``device`` (no-op for weight-free codecs)."""
        return self

    def latent_shape(self, latent_frames: int) -> tuple[int, int, int]:
        """``(C, H, W)`` of one latent with ``latent_frames`` rows."""
        return (self.latent_channels, int(latent_frames), self.latent_width)

    def check_latent_frames(self, latent_frames: int, multiple: int = 1) -> None:
        """Refuse a latent length that is not a positive multiple of ``multiple``."""
        if not isinstance(latent_frames, int) or latent_frames < 1 or latent_frames % multiple:
            raise TasBenchError(f"latent_frames {latent_frames!r} must be a positive multiple of "
                                f"{multiple} (the denoiser halves it {int(math.log2(multiple))} times)",
                                field="latent_frames")


def _check_batch(x: torch.Tensor, what: str) -> torch.Tensor:
    if x.ndim != 2:
        raise TasBenchError(f"expected (batch, samples), got shape {tuple(x.shape)}", field=what)
    return x


# ----------------------------------------------------------------------------------------------
# relstft: the exact, weight-free CPU codec


class RelativeSTFTCodec(Codec):
    """Mono-relative STFT of ``d`` (see the module docstring); exact given the mono.

    ``n_fft``/``hop``: the STFT (Hann, centred, reflect padding; hop <= n_fft / 2 keeps it
    invertible). ``freq_smooth`` / ``time_smooth``: half-widths in bins / frames of the Hann
    kernels that smooth |M|^2 into E^2. ``floor_rel``: floor of E relative to the window's RMS
    STFT magnitude (keeps z bounded in quiet bins); ``floor_abs``: absolute floor (STFT
    magnitude units) for silent windows. ``scale``: multiplies the latent (unit-variance-ish
    latents for diffusion: 1.5 gives std ~1 on the demo data). ``fold``: pixel-unshuffle factor
    (time and frequency), which trades latent area for channels without losing anything (4: a
    2 s window is a (32, 32, 64) latent, 16x less area for the denoiser's convolutions and
    attention than the unfolded (2, 128, 256)).
    """

    name = "relstft"

    def __init__(self, n_fft: int = 512, hop: int = 256, freq_smooth: int = 8, time_smooth: int = 2,
                 floor_rel: float = 1e-2, floor_abs: float = 1e-5, scale: float = 1.5,
                 fold: int = 4) -> None:
        if n_fft < 16 or n_fft % 2 or not 1 <= hop <= n_fft // 2:
            raise TasBenchError(f"relstft needs an even n_fft >= 16 and 1 <= hop <= n_fft/2, got "
                                f"n_fft={n_fft}, hop={hop}", field="codec")
        if fold < 1 or (n_fft // 2) % fold:
            raise TasBenchError(f"relstft fold {fold} must divide n_fft/2 = {n_fft // 2}", field="codec")
        if not (scale > 0 and floor_rel >= 0 and floor_abs > 0 and freq_smooth >= 0 and time_smooth >= 0):
            raise TasBenchError("relstft scale and floor_abs must be > 0, floor_rel and the "
                                "smoothing widths >= 0", field="codec")
        self.n_fft, self.hop, self.fold = int(n_fft), int(hop), int(fold)
        self.freq_smooth, self.time_smooth = int(freq_smooth), int(time_smooth)
        self.floor_rel, self.floor_abs, self.scale = float(floor_rel), float(floor_abs), float(scale)
        self.latent_channels = 2 * self.fold**2
        self.latent_width = (self.n_fft // 2) // self.fold
        self._window = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float64)
        self._kf = _hann_kernel(self.freq_smooth)
        self._kt = _hann_kernel(self.time_smooth)

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "n_fft": self.n_fft, "hop": self.hop,
                "freq_smooth": self.freq_smooth, "time_smooth": self.time_smooth,
                "floor_rel": self.floor_rel, "floor_abs": self.floor_abs, "scale": self.scale,
                "fold": self.fold}

    def window_samples(self, latent_frames: int) -> int:
        frames = int(latent_frames) * self.fold
        return (frames - 1) * self.hop  # centred STFT of (K - 1) hops has exactly K frames

    def check_latent_frames(self, latent_frames: int, multiple: int = 1) -> None:
        super().check_latent_frames(latent_frames, multiple)

    # -- pieces ----------------------------------------------------------------------------
    def _stft(self, x: torch.Tensor) -> torch.Tensor:
        """``(n,)`` float64 -> ``(n_fft/2 + 1, frames)`` complex128."""
        return torch.stft(x, self.n_fft, self.hop, self.n_fft, self._window, center=True,
                          pad_mode="reflect", return_complex=True)

    def _istft(self, spec: torch.Tensor, n: int) -> torch.Tensor:
        return torch.istft(spec, self.n_fft, self.hop, self.n_fft, self._window, center=True,
                           length=n)

    def _envelope(self, mspec: torch.Tensor) -> torch.Tensor:
        """Smoothed magnitude envelope E ``(F, K)`` (float64) of one mono spectrogram."""
        p = mspec.real.square() + mspec.imag.square()
        x = F.pad(p[None, None], (self.time_smooth, self.time_smooth,
                                  self.freq_smooth, self.freq_smooth), mode="replicate")
        x = F.conv2d(x, self._kf.view(1, 1, -1, 1))
        x = F.conv2d(x, self._kt.view(1, 1, 1, -1))[0, 0]
        floor2 = self.floor_rel**2 * float(p.mean()) + self.floor_abs**2
        return torch.sqrt(x.clamp(min=0.0) + floor2)

    @staticmethod
    def _unit_phase(mspec: torch.Tensor) -> torch.Tensor:
        mag = mspec.abs()
        return torch.where(mag > 0, mspec / mag.clamp(min=1e-300), torch.ones_like(mspec))

    def _pack(self, c: torch.Tensor) -> torch.Tensor:
        """``(F = n_fft/2 + 1, K)`` complex -> ``(C, K / fold, W)`` float32 (time first)."""
        body = c[:-1].clone()
        body[0] = torch.complex(c[0].real, c[-1].real)  # DC and Nyquist are real: share a bin
        img = torch.stack([body.real, body.imag], 0).transpose(1, 2)  # (2, K, n_fft/2)
        if self.fold > 1:
            img = F.pixel_unshuffle(img[None], self.fold)[0]
        return img.to(torch.float32)

    def _unpack(self, img: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`_pack`: ``(C, H, W)`` -> ``(n_fft/2 + 1, K)`` complex128."""
        img = img.to(torch.float64)
        if self.fold > 1:
            img = F.pixel_shuffle(img[None], self.fold)[0]
        img = img.transpose(1, 2)  # (2, n_fft/2, K)
        body = torch.complex(img[0], img[1])
        dc = torch.complex(img[0, 0], torch.zeros_like(img[0, 0]))
        nyq = torch.complex(img[1, 0], torch.zeros_like(img[1, 0]))
        return torch.cat([dc[None], body[1:], nyq[None]], 0)

    # -- the interface (one window at a time: a clip's bits never depend on its batch) ------
    def encode_mono(self, m: torch.Tensor) -> torch.Tensor:
        m = _check_batch(m, "mono")
        out = []
        for x in m.to(torch.float64).cpu():
            ms = self._stft(x)
            env = self._envelope(ms)
            rel = ms.abs() / env
            ref = math.sqrt(float((ms.real.square() + ms.imag.square()).mean()) + self.floor_abs**2)
            loud = 0.25 * torch.log(env / ref)
            out.append(self._pack(torch.complex(rel, loud)))
        return torch.stack(out).to(m.device)

    def encode_diff(self, d: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        d, m = _check_batch(d, "difference"), _check_batch(m, "mono")
        if d.shape != m.shape:
            raise TasBenchError(f"difference {tuple(d.shape)} and mono {tuple(m.shape)} differ in shape")
        out = []
        for dx, mx in zip(d.to(torch.float64).cpu(), m.to(torch.float64).cpu()):
            ms = self._stft(mx)
            z = self._stft(dx) * self._unit_phase(ms).conj() / self._envelope(ms)
            out.append(self._pack(z * self.scale))
        return torch.stack(out).to(d.device)

    def decode_diff(self, z: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        m = _check_batch(m, "mono")
        if z.ndim != 4 or z.shape[0] != m.shape[0] or z.shape[1] != self.latent_channels \
                or z.shape[3] != self.latent_width:
            raise TasBenchError(f"latent of shape {tuple(z.shape)} does not fit this relstft codec "
                                f"(batch {m.shape[0]}, {self.latent_channels} channels, width "
                                f"{self.latent_width})")
        n = m.shape[1]
        out = []
        for zx, mx in zip(z.detach().cpu(), m.to(torch.float64).cpu()):
            ms = self._stft(mx)
            rel = self._unpack(zx)
            if rel.shape != ms.shape:
                raise TasBenchError(f"latent has {rel.shape[1]} frames but the mono window of "
                                    f"{n} samples has {ms.shape[1]}")
            out.append(self._istft(rel / self.scale * self._envelope(ms) * self._unit_phase(ms), n))
        return torch.stack(out).to(torch.float32).to(z.device)


    def diff_spectrum(self, z: torch.Tensor, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(D, M)`` STFTs ``(B, n_fft/2 + 1, K)`` complex128 on ``z``'s device: ``D`` the
        inverse of :meth:`encode_diff` before the inverse STFT (gradients flow to ``z``), ``M``
        the mono's (constant)."""
        m = _check_batch(m, "mono")
        ds, ms_all = [], []
        for zx, mx in zip(z, m.to(torch.float64).cpu()):
            ms = self._stft(mx)
            to_d = (self._envelope(ms) * self._unit_phase(ms) / self.scale).to(zx.device)
            rel = self._unpack(zx)
            if rel.shape != ms.shape:
                raise TasBenchError(f"latent has {rel.shape[1]} frames but the mono window of "
                                    f"{mx.shape[0]} samples has {ms.shape[1]}")
            ds.append(rel * to_d)
            ms_all.append(ms.to(zx.device))
        return torch.stack(ds), torch.stack(ms_all)


def _hann_kernel(half_width: int) -> torch.Tensor:
    """Normalised, strictly positive Hann kernel of ``2 * half_width + 1`` taps (float64)."""
    k = torch.hann_window(2 * half_width + 3, periodic=False, dtype=torch.float64)[1:-1]
    return k / k.sum()


# ----------------------------------------------------------------------------------------------
# audioldm2: the paper's mel + VAE + HiFi-GAN

MEL = {"sample_rate": 16000, "n_fft": 1024, "hop": 160, "win": 1024, "n_mels": 64,
       "fmin": 0.0, "fmax": 8000.0, "log_clamp": 1e-5}
#: ``AutoencoderKL.config.scaling_factor`` of cvssp/audioldm2 (REFERENCE §5).
AUDIOLDM2_SCALING_FACTOR = 0.4110932946205139
AUDIOLDM2_LAYOUT = ("FOLDER/vae/{config.json, diffusion_pytorch_model.safetensors} (AutoencoderKL) "
                    "and FOLDER/vocoder/{config.json, model.safetensors} (SpeechT5HifiGan), as in "
                    "a local snapshot of cvssp/audioldm2")
_PARTS = {"vae": "diffusion_pytorch_model.safetensors", "vocoder": "model.safetensors"}


def check_audioldm2_folder(path: str | Path) -> Path:
    """Return the snapshot folder, or raise :class:`TasBenchError` naming what is missing."""
    root = Path(path).expanduser()
    if not str(path) or not root.is_dir():
        raise TasBenchError(f"AudioLDM2 folder not found; expected {AUDIOLDM2_LAYOUT}", path=root,
                            hint="the weights are never downloaded: give a local folder")
    missing = [f"{sub}/{name}" for sub, weights in _PARTS.items()
               for name in ("config.json", weights) if not (root / sub / name).is_file()]
    if missing:
        raise TasBenchError(f"incomplete AudioLDM2 folder: missing {', '.join(missing)}; expected "
                            f"{AUDIOLDM2_LAYOUT}", path=root)
    return root


def folder_fingerprint(root: Path) -> str:
    """Identity of a snapshot: sha256 of each config file, (name, size) of each weight file."""
    parts: dict[str, str] = {}
    for sub in _PARTS:
        for p in sorted((root / sub).iterdir()):
            if p.is_file() and not p.name.startswith("."):
                big = p.suffix in (".safetensors", ".bin")
                parts[f"{sub}/{p.name}"] = f"size:{p.stat().st_size}" if big else sha256_file(p)
    return stable_hash(parts)


def mel_basis() -> torch.Tensor:
    """The ``(64, 513)`` Slaney mel filterbank of REFERENCE §5 (librosa's default norm)."""
    import librosa

    fb = librosa.filters.mel(sr=MEL["sample_rate"], n_fft=MEL["n_fft"], n_mels=MEL["n_mels"],
                             fmin=MEL["fmin"], fmax=MEL["fmax"], htk=False, norm="slaney")
    return torch.from_numpy(np.asarray(fb, dtype=np.float32))


def log_mel(x: torch.Tensor, basis: torch.Tensor | None = None) -> torch.Tensor:
    """AudioLDM's log-mel of ``(B, n)`` audio -> ``(B, 1, frames, 64)``, frames = n // 160 + 1.

    STFT n_fft 1024, hop 160, Hann window 1024 (periodic), centred with reflect padding;
    magnitude ``|X|``; mel = basis @ |X|; ``log(clamp(mel, 1e-5))`` (natural log).
    """
    basis = mel_basis() if basis is None else basis
    window = torch.hann_window(MEL["win"], periodic=True, device=x.device)
    spec = torch.stft(x.float(), MEL["n_fft"], MEL["hop"], MEL["win"], window, center=True,
                      pad_mode="reflect", return_complex=True).abs()
    mel = torch.matmul(basis.to(x.device), spec)  # (B, 64, frames)
    return torch.log(torch.clamp(mel, min=MEL["log_clamp"])).transpose(1, 2)[:, None]


class AudioLDM2Codec(Codec):
    """The paper's codec: log-mel -> AudioLDM2 VAE latent; latent -> VAE decoder -> HiFi-GAN.

    ``path`` is a local cvssp/audioldm2 snapshot (see :data:`AUDIOLDM2_LAYOUT`); the VAE and the
    vocoder are loaded with ``from_pretrained(path, subfolder=..., local_files_only=True)``
    (safetensors only), frozen and kept out of TAS checkpoints (the checkpoint records
    :meth:`fingerprint`). Encoding uses the mean of the VAE posterior (deterministic).
    """

    name = "audioldm2"

    def __init__(self, path: str | Path) -> None:
        root = check_audioldm2_folder(path)
        try:
            from diffusers import AutoencoderKL
            from transformers import SpeechT5HifiGan
        except ImportError:
            raise TasBenchError("the audioldm2 codec needs diffusers and transformers installed") from None
        try:
            vae = AutoencoderKL.from_pretrained(str(root), subfolder="vae", local_files_only=True,
                                                use_safetensors=True)
            voc = SpeechT5HifiGan.from_pretrained(str(root), subfolder="vocoder",
                                                  local_files_only=True, use_safetensors=True)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TasBenchError(f"cannot load the AudioLDM2 VAE and vocoder from it ({first}); "
                                f"expected {AUDIOLDM2_LAYOUT}", path=root) from None
        if vae.config.in_channels != 1 or int(voc.config.model_in_dim) != MEL["n_mels"]:
            raise TasBenchError(f"not an AudioLDM2-style snapshot: VAE in_channels "
                                f"{vae.config.in_channels} (want 1), vocoder model_in_dim "
                                f"{voc.config.model_in_dim} (want {MEL['n_mels']})", path=root)
        if int(np.prod(voc.config.upsample_rates)) != MEL["hop"]:
            raise TasBenchError(f"vocoder upsamples by {int(np.prod(voc.config.upsample_rates))}, "
                                f"the mel hop is {MEL['hop']}", path=root / "vocoder")
        for mod in (vae, voc):
            mod.eval()
            mod.requires_grad_(False)
        self.path = root
        self._vae, self._voc = vae, voc
        self.down = 2 ** (len(vae.config.block_out_channels) - 1)
        self.scaling_factor = float(vae.config.scaling_factor)
        self.latent_channels = int(vae.config.latent_channels)
        if MEL["n_mels"] % self.down:
            raise TasBenchError(f"VAE downsamples by {self.down}, which does not divide 64 mels", path=root)
        self.latent_width = MEL["n_mels"] // self.down
        self._basis = mel_basis()
        self._fingerprint = folder_fingerprint(root)

    def config(self) -> dict[str, Any]:
        return {"type": self.name, "path": str(self.path)}

    def fingerprint(self) -> str | None:
        return self._fingerprint

    def to(self, device: str | torch.device) -> AudioLDM2Codec:
        self._vae.to(device)
        self._voc.to(device)
        return self

    def window_samples(self, latent_frames: int) -> int:
        return int(latent_frames) * self.down * MEL["hop"]

    def _device(self) -> torch.device:
        return next(self._vae.parameters()).device

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_batch(x, "audio").to(self._device())
        frames = x.shape[1] // MEL["hop"]
        if frames % self.down or frames == 0:
            raise TasBenchError(f"a window of {x.shape[1]} samples is not a whole number of latent "
                                f"frames ({self.down * MEL['hop']} samples each)")
        mel = log_mel(x, self._basis)[:, :, :frames]  # drop the extra centred frame
        out = []
        with torch.no_grad():  # one window at a time: a clip's bits never depend on its batch
            for row in mel:
                post = self._vae.encode(row[None].to(self._vae.dtype)).latent_dist
                out.append(post.mode().float()[0] * self.scaling_factor)
        return torch.stack(out)

    def encode_mono(self, m: torch.Tensor) -> torch.Tensor:
        return self._encode(m)

    def encode_diff(self, d: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        return self._encode(d)

    def decode_mel(self, z: torch.Tensor) -> torch.Tensor:
        """Latents ``(B, 8, H, 16)`` -> log-mels ``(B, 1, 4H, 64)`` (one window at a time)."""
        with torch.no_grad():
            return torch.cat([self._vae.decode(row[None].to(self._device(), self._vae.dtype)
                                               / self.scaling_factor).sample for row in z])

    def decode_diff(self, z: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        mel = self.decode_mel(z)
        with torch.no_grad():
            wav = torch.cat([self._voc(row.to(self._voc.dtype)).float().reshape(1, -1)
                             for row in mel.squeeze(1)])
        n = m.shape[1]
        wav = wav[:, :n] if wav.shape[1] >= n else F.pad(wav, (0, n - wav.shape[1]))
        return wav.to(z.device)


# ----------------------------------------------------------------------------------------------

CODECS = ("relstft", "audioldm2")


def build_codec(cfg: dict[str, Any]) -> Codec:
    """The codec described by ``cfg`` (``{"type": "relstft", ...}`` or ``{"type": "audioldm2",
    "path": FOLDER}``); unknown types and fields are errors naming the field."""
    if not isinstance(cfg, dict):
        raise TasBenchError(f"codec config must be an object, got {type(cfg).__name__}", field="codec")
    kind = cfg.get("type", "relstft")
    rest = {k: v for k, v in cfg.items() if k != "type"}
    if kind == "relstft":
        allowed = {"n_fft", "hop", "freq_smooth", "time_smooth", "floor_rel", "floor_abs", "scale", "fold"}
        bad = sorted(set(rest) - allowed)
        if bad:
            raise TasBenchError(f"unknown relstft codec field(s) {bad}; known: {sorted(allowed)}",
                                field="codec")
        return RelativeSTFTCodec(**rest)
    if kind == "audioldm2":
        if set(rest) - {"path"}:
            raise TasBenchError(f"unknown audioldm2 codec field(s) {sorted(set(rest) - {'path'})}",
                                field="codec")
        if not rest.get("path"):
            raise TasBenchError(f"the audioldm2 codec needs a path: {AUDIOLDM2_LAYOUT}",
                                field="codec.path")
        return AudioLDM2Codec(rest["path"])
    raise TasBenchError(f"unknown codec type {kind!r}; known: {list(CODECS)}", field="codec.type")
