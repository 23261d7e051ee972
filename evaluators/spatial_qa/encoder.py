"""Spatial-AST-shaped binaural encoder (BAT, zszheng147/Spatial-AST; REFERENCE.md §6).

Front end (fixed, no parameters to learn): binaural audio at 32 kHz, loudness-normalised to
-14 dBFS RMS over both ears; STFT n_fft 1024, hop 320, Hann; 128 Slaney mel bands 50-14000 Hz.
Four feature maps of shape (T, 128): log-mel power of L and of R (each standardised by
``BatchNorm2d(2, affine=False)`` as published), and cos / sin of the interaural phase
difference ``IPD = angle(R) - angle(L)`` per STFT bin, each projected onto the mel bands by
the same (Slaney-normalised) mel matrix. T is interpolated to the preset's ``frames``.

Network (``stem="conv1"``, the paper preset, as published): conv3x3 4 -> 1 + BatchNorm + GELU;
16 x 16 patches (``frames / 16 x 8`` of them: 512
for the paper preset's 1024 frames); three learned CLS tokens (distance, DoA, class) prepended;
a pre-norm ViT. Heads on the CLS tokens: class (multi-label, BCE), distance (21 classes of
0.5 m, CE), azimuth (360 x 1 deg, CE) and elevation (180 x 1 deg, CE); the pretraining loss is
``1250 * cls + dist + 2 * (az + el)`` (the published weights).

The cpu preset uses the documented lighter stem ``stem="lr4"``: five maps -- the two
standardised log-mels, their raw difference ``log-mel L - log-mel R`` (the ILD in nats,
typically within +-3), and cos / sin IPD scaled by :data:`IPD_SCALE` (their mel projections are
~0.015 in standard deviation) -- into a conv3x3 5 -> 4 + BatchNorm + GELU and a 4-channel patch
embedding. Measured reason (fast probe, cached features of 540 one-source clips, 150 steps, side
accuracy on 140 held-out clips): with the published stem and the published loss the encoder's
DoA token stays at chance on left/right (0.51) because the 1250-weighted class term swamps the
tiny L - R contrast in the single fused map; the explicit ILD channel makes the side visible at
initialisation.

Clip-level cues (``stem="lr4lt"``, an addition to the ``lr4`` stem): two more maps per mel
band, constant over the frames -- the clip's ILD from the band powers summed over the whole
clip and its interaural coherence (:func:`clip_level_cues`) -- so conv 7 -> 4. Why: the
per-frame maps carry the pinna cues that separate front from back and up from down only
faintly (silent frames add noise to the per-frame ILD, and the frames are subsampled to
``frames``): the ``lr4`` encoder's heads got the three direction words of 48.5 % of 200
one-source test clips (front/back 69.5 %, up/down 71.5 %), while the same clips' clip-level ILD
and coherence alone, in a logistic regression, give them for 79 % of 1050 such clips
(``benchmarks/probe_clip_cues.py``). With ``cue_cls`` the 256 clip-level numbers (ILD in nats, coherence in [0, 1]: already of
order 1, so no normalisation and nothing batch-dependent) go through a 2-layer MLP whose output
is added to the three CLS tokens before the first block, so the heads reach them without
going through the patches; the heads then get the three words of 82.5 % of those clips (the
shipped assessor's README).

Class-bound heads (``bound_heads``, an addition for two-source clips; off in both presets
unless the training config asks for them): Spatial-AST's heads describe one source, and its
pretraining sees one-source clips only, so nothing teaches the encoder which position belongs to
which sound in a mixture -- exactly what the two-source questions ask ("is the dog to the left
of the bell?", and the DOA / distance of each source of a two-source clip). With them, for every
class k the DoA token predicts three logits (left, front, above: the source of class k has that
word) and the distance token 21 distance bins, trained on every clip (one or two sources), the
loss taken over the classes present only (:func:`bound_loss`).

Coordinates of the heads follow the dataset (SOFA: azimuth counter-clockwise from the front,
degrees in [0, 360); elevation in [-90, 90)), not BAT's axes: the labels come from our manifest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tas_bench.data.geometry import DIRECTION_AXES
from tas_bench.runtime.errors import TasBenchError

SAMPLE_RATE = 32000
N_FFT = 1024
HOP = 320
N_MELS = 128
FMIN, FMAX = 50.0, 14000.0
TARGET_DBFS = -14.0
PATCH = 16
N_DISTANCE = 21  # 0.0, 0.5, ..., 10.0 m
DISTANCE_STEP = 0.5
N_AZIMUTH = 360
N_ELEVATION = 180
LOSS_WEIGHTS = {"cls": 1250.0, "dist": 1.0, "az": 2.0, "el": 2.0}
STEMS = ("conv1", "lr4", "lr4lt")
#: stems whose front end adds the two clip-level maps (module doc, "Clip-level cues")
LONG_TERM_STEMS = ("lr4lt",)
#: the direction word of each axis a class-bound direction logit predicts (1 = this word)
BOUND_WORDS = tuple(axis[0] for axis in DIRECTION_AXES)  # left, front, above
#: scale of the mel-projected cos / sin IPD maps in the ``lr4`` stem (std ~0.015 -> ~0.75)
IPD_SCALE = 50.0


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of the encoder. ``frames`` must be a multiple of 16 (the patch size)."""

    preset: str = "cpu"
    frames: int = 256
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    n_classes: int = 16
    dropout: float = 0.0
    #: "conv1": conv 4 -> 1 as published; "lr4": explicit ILD channel, conv 5 -> 4 (module doc)
    stem: str = "conv1"
    #: class-bound geometry heads (not in Spatial-AST; module doc "Class-bound heads")
    bound_heads: bool = False
    #: the clip-level cues also added to the 3 CLS tokens (``lr4lt`` only; module doc)
    cue_cls: bool = False

    def __post_init__(self) -> None:
        if self.stem not in STEMS:
            raise TasBenchError(f"unknown stem {self.stem!r}; one of {list(STEMS)}",
                                field="encoder.stem")
        if self.frames % PATCH or self.frames < PATCH:
            raise TasBenchError(f"must be a positive multiple of {PATCH}, got {self.frames}",
                                field="encoder.frames")
        if self.dim % self.heads:
            raise TasBenchError(f"dim {self.dim} is not divisible by heads {self.heads}",
                                field="encoder.heads")
        if self.n_classes < 1:
            raise TasBenchError("must be >= 1", field="encoder.n_classes")
        if self.cue_cls and self.stem not in LONG_TERM_STEMS:
            raise TasBenchError(f"needs a stem with clip-level cues ({list(LONG_TERM_STEMS)}), "
                                f"not {self.stem!r}", field="encoder.cue_cls")

    @property
    def n_patches(self) -> int:
        """Number of 16 x 16 patches: (frames / 16) x (128 / 16)."""
        return (self.frames // PATCH) * (N_MELS // PATCH)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for flag in ("bound_heads", "cue_cls"):  # encoders made before a flag keep their hash
            if not d[flag]:
                del d[flag]
        return d


ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    # ViT-B as published: 768 wide, 12 layers, 12 heads, 1024 frames -> 512 patches
    "paper": {"preset": "paper", "frames": 1024, "dim": 768, "depth": 12, "heads": 12,
              "n_classes": 355},
    # same structure, small enough to train on 2 CPU cores: 256 frames (2.56 s) -> 128 patches
    "cpu": {"preset": "cpu", "frames": 256, "dim": 128, "depth": 4, "heads": 4, "n_classes": 16,
            "stem": "lr4"},
}


def encoder_config(preset: str, **overrides: Any) -> EncoderConfig:
    """The :class:`EncoderConfig` of a named preset, with optional field overrides."""
    if preset not in ENCODER_PRESETS:
        raise TasBenchError(f"unknown encoder preset {preset!r}; one of {sorted(ENCODER_PRESETS)}",
                            field="--preset")
    return EncoderConfig(**{**ENCODER_PRESETS[preset], **overrides})


def loudness_normalize(x: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Scale (2, T) audio so that its RMS over both ears is ``target_dbfs`` dB full scale.

    Silence (RMS below 1e-9) is returned unchanged (zeros stay zeros).
    """
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    if rms < 1e-9:
        return np.asarray(x, dtype=np.float32)
    gain = 10.0 ** (target_dbfs / 20.0) / rms
    return (np.asarray(x, dtype=np.float64) * gain).astype(np.float32)


class SpatialFrontEnd(nn.Module):
    """Binaural (B, 2, N) float at 32 kHz -> (B, C, frames, 128) features (see module doc):
    C = 4, or 6 with ``long_term`` (the clip-level ILD and coherence maps)."""

    def __init__(self, frames: int, long_term: bool = False) -> None:
        super().__init__()
        self.frames = frames
        self.long_term = long_term
        self.channels = 6 if long_term else 4
        mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
        self.register_buffer("mel", torch.from_numpy(mel.astype(np.float32)), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)
        self.norm = nn.BatchNorm2d(2, affine=False)

    def raw(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, 2, N) -> (B, C, frames, 128) features before the log-mel BatchNorm: a fixed
        function of the audio, so training can compute it once per clip."""
        b, c, n = wav.shape
        if c != 2:
            raise TasBenchError(f"expected binaural (B, 2, N) audio, got {tuple(wav.shape)}")
        spec = torch.stft(wav.reshape(b * 2, n), N_FFT, HOP, window=self.window, center=True,
                          return_complex=True).reshape(b, 2, N_FFT // 2 + 1, -1)
        spec = spec.transpose(-1, -2)  # (B, 2, T, 513)
        power = spec.real.square() + spec.imag.square()
        logmel = torch.log(power @ self.mel.T + 1e-10)  # (B, 2, T, 128)
        ipd = torch.angle(spec[:, 1]) - torch.angle(spec[:, 0])
        ipd_feats = torch.stack([torch.cos(ipd) @ self.mel.T, torch.sin(ipd) @ self.mel.T], dim=1)
        feats = torch.cat([logmel, ipd_feats], dim=1)  # (B, 4, T, 128)
        if feats.shape[2] != self.frames:
            feats = F.interpolate(feats, size=(self.frames, N_MELS), mode="bilinear",
                                  align_corners=False)
        if self.long_term:
            lt = clip_level_cues(spec, power, self.mel)  # (B, 2, 128)
            feats = torch.cat([feats, lt[:, :, None, :].expand(-1, -1, self.frames, -1)], dim=1)
        return feats

    @staticmethod
    def clip_cues(feats: torch.Tensor) -> torch.Tensor:
        """(B, 2 * 128): the clip-level ILD (nats) and coherence maps of ``long_term`` features
        (B, 6, frames, 128), one row each (they are constant over the frames)."""
        return feats[:, 4:6, 0].flatten(1)

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        """Apply the published ``BatchNorm2d(2, affine=False)`` to the two log-mel maps."""
        return torch.cat([self.norm(feats[:, :2]), feats[:, 2:]], dim=1)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.normalize(self.raw(wav))


def clip_level_cues(spec: torch.Tensor, power: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
    """Clip-level interaural cues per mel band, (B, 2, n_mels), from the STFT ``spec``
    (B, 2, T, F) complex and its ``power`` (B, 2, T, F):

    * ILD in nats: ``log(sum_t P_L + eps) - log(sum_t P_R + eps)`` of the mel-band powers
      summed over the whole clip (an energy-weighted average: frames where the band is silent
      add nothing), ``eps = 1e-10``;
    * interaural coherence in [0, 1]: ``sum_f mel_bf |sum_t X_L X_R*| /
      sqrt(sum_t P_L,b sum_t P_R,b)`` (1 for one dry source, lower with reverberation or
      several sources; 0 for silence).
    """
    p = power.sum(dim=2) @ mel.T  # (B, 2, n_mels)
    ild = torch.log(p[:, 0] + 1e-10) - torch.log(p[:, 1] + 1e-10)
    cross = (spec[:, 0] * spec[:, 1].conj()).sum(dim=1).abs()  # (B, F)
    coh = (cross @ mel.T) / torch.sqrt(p[:, 0] * p[:, 1] + 1e-20)
    return torch.stack([ild, coh.clamp(0.0, 1.0)], dim=1)


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.n1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.n2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.n1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.n2(x))


class SpatialAudioEncoder(nn.Module):
    """Spatial-AST-shaped encoder: features -> (B, 3 + n_patches, dim) tokens, plus heads."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.front = SpatialFrontEnd(config.frames, long_term=config.stem in LONG_TERM_STEMS)
        c_in, c_stem = {"conv1": (4, 1), "lr4": (5, 4), "lr4lt": (7, 4)}[config.stem]
        self.conv = nn.Sequential(nn.Conv2d(c_in, c_stem, 3, padding=1), nn.BatchNorm2d(c_stem),
                                  nn.GELU())
        self.patch = nn.Conv2d(c_stem, d, kernel_size=PATCH, stride=PATCH)
        self.cls = nn.Parameter(torch.zeros(1, 3, d))
        if config.cue_cls:  # clip-level ILD + coherence (2 x 128) -> one vector per CLS token
            self.cue = nn.Sequential(nn.Linear(2 * N_MELS, d), nn.GELU(), nn.Linear(d, 3 * d))
        self.pos = nn.Parameter(torch.zeros(1, 3 + config.n_patches, d))
        nn.init.trunc_normal_(self.cls, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(_Block(d, config.heads, config.mlp_ratio, config.dropout)
                                    for _ in range(config.depth))
        self.norm = nn.LayerNorm(d)
        self.head_dist = nn.Linear(d, N_DISTANCE)
        self.head_az = nn.Linear(d, N_AZIMUTH)
        self.head_el = nn.Linear(d, N_ELEVATION)
        self.head_cls = nn.Linear(d, config.n_classes)
        if config.bound_heads:
            self.head_bound_dir = nn.Linear(d, config.n_classes * len(BOUND_WORDS))
            self.head_bound_dist = nn.Linear(d, config.n_classes * N_DISTANCE)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """Token sequence (B, 3 + n_patches, dim): CLS distance, DoA, class, then the patches."""
        return self.forward_features(self.front.raw(wav))

    def forward_features(self, raw: torch.Tensor) -> torch.Tensor:
        """Like :meth:`forward`, from :meth:`SpatialFrontEnd.raw` features (B, C, frames, 128)."""
        x = self.front.normalize(raw)
        if self.config.stem != "conv1":  # lr4 maps, then (lr4lt) the clip-level ILD, coherence
            x = torch.cat([x[:, :2], raw[:, :1] - raw[:, 1:2], IPD_SCALE * x[:, 2:4], x[:, 4:]],
                          dim=1)
        x = self.conv(x)
        x = self.patch(x).flatten(2).transpose(1, 2)  # (B, n_patches, d)
        cls = self.cls.expand(x.shape[0], -1, -1)
        if self.config.cue_cls:
            cls = cls + self.cue(self.front.clip_cues(raw)).view(-1, 3, self.config.dim)
        x = torch.cat([cls, x], dim=1) + self.pos
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def heads(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits of the geometry heads from the CLS tokens of ``tokens``."""
        out = {"dist": self.head_dist(tokens[:, 0]),
               "az": self.head_az(tokens[:, 1]),
               "el": self.head_el(tokens[:, 1]),
               "cls": self.head_cls(tokens[:, 2])}
        if self.config.bound_heads:
            n, b = self.config.n_classes, tokens.shape[0]
            out["bound_dir"] = self.head_bound_dir(tokens[:, 1]).view(b, n, len(BOUND_WORDS))
            out["bound_dist"] = self.head_bound_dist(tokens[:, 0]).view(b, n, N_DISTANCE)
        return out


def geometry_targets(azimuth: float, elevation: float, distance: float) -> tuple[int, int, int]:
    """Class indices (azimuth 1 deg bins of [0, 360), elevation 1 deg bins of [-90, 90),
    distance 0.5 m bins of [0, 10]) of one source."""
    az = int(math.floor(azimuth % 360.0)) % N_AZIMUTH
    el = min(N_ELEVATION - 1, max(0, int(math.floor(elevation + 90.0))))
    dist = min(N_DISTANCE - 1, max(0, int(round(distance / DISTANCE_STEP))))
    return az, el, dist


def pretraining_loss(logits: dict[str, torch.Tensor], az: torch.Tensor, el: torch.Tensor,
                     dist: torch.Tensor, cls: torch.Tensor,
                     weights: dict[str, float] | None = None
                     ) -> tuple[torch.Tensor, dict[str, float]]:
    """The published pretraining loss ``1250 * BCE(cls) + CE(dist) + 2 * (CE(az) + CE(el))``
    (dimensionless; ``weights`` replaces some of :data:`LOSS_WEIGHTS`).

    ``cls`` is a (B, n_classes) multi-hot float tensor; the others are (B,) class indices.
    Returns the total and the parts (floats, for the log).
    """
    w = {**LOSS_WEIGHTS, **(weights or {})}
    parts = {"cls": F.binary_cross_entropy_with_logits(logits["cls"], cls),
             "dist": F.cross_entropy(logits["dist"], dist),
             "az": F.cross_entropy(logits["az"], az),
             "el": F.cross_entropy(logits["el"], el)}
    total = sum(w[k] * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}


def bound_loss(logits: dict[str, torch.Tensor], present: torch.Tensor, words: torch.Tensor,
               word_mask: torch.Tensor, dist: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of the class-bound heads (dimensionless): mean BCE of the direction-word logits
    over the (clip, class, axis) entries where class k is present and the axis has a word
    (``word_mask``), plus the mean CE of the distance bins over present classes.

    ``present`` (B, K) bool; ``words`` (B, K, 3) float 0/1 targets (1 = left / front / above);
    ``word_mask`` (B, K, 3) bool; ``dist`` (B, K) long bins (ignored where not present).
    """
    m = (word_mask & present[..., None]).float()
    bce = F.binary_cross_entropy_with_logits(logits["bound_dir"], words, reduction="none")
    dir_loss = (bce * m).sum() / m.sum().clamp(min=1.0)
    d = torch.where(present, dist, torch.full_like(dist, -100))
    if bool(present.any()):
        dist_loss = F.cross_entropy(logits["bound_dist"].reshape(-1, N_DISTANCE), d.reshape(-1),
                                    ignore_index=-100)
    else:
        dist_loss = logits["bound_dist"].sum() * 0.0
    return dir_loss + dist_loss, {"bound_dir": float(dir_loss.detach()),
                                  "bound_dist": float(dist_loss.detach())}
