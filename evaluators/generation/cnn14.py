"""PANNs Cnn14 (qiuqiangkong/audioset_tagging_cnn, as used by haoheliu/audioldm_eval).

Our own module definition; parameter names match the official checkpoints
(``spectrogram_extractor.stft.conv_real.weight``, ``logmel_extractor.melW``, ``bn0.*``,
``conv_block{1..6}.{conv1,conv2,bn1,bn2}.*``, ``fc1.*``, ``fc_audioset.*``) so that
``Cnn14_16k_mAP=0.438.pth`` / ``Cnn14_mAP=0.431.pth`` load with ``strict=True``. The front end
is torchlibrosa's ``Spectrogram`` (Hann, centred, reflect padding, power 2) and
``LogmelFilterBank`` (librosa mel basis, ``10 log10(max(x, 1e-10))``, ref 1, no top_db) — the
modules the official model uses.

Inference only: the model has no dropout / SpecAugment / mixup (they are identity in eval
mode). Pooling: mean over frequency, then max + mean over time; ``embedding = ReLU(fc1(.))``
(2048-d), ``logits = fc_audioset(embedding)`` (527 AudioSet classes, before the sigmoid).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Cnn14Config:
    """Front-end parameters of a Cnn14 variant."""

    sample_rate: int
    window_size: int
    hop_size: int
    mel_bins: int
    fmin: float
    fmax: float
    classes: int
    weights: str


#: The two official AudioSet-tagging variants (audioldm_eval ``eval.py``).
CONFIGS: dict[int, Cnn14Config] = {
    16000: Cnn14Config(16000, 512, 160, 64, 50.0, 8000.0, 527, "Cnn14_16k_mAP=0.438.pth"),
    32000: Cnn14Config(32000, 1024, 320, 64, 50.0, 14000.0, 527, "Cnn14_mAP=0.431.pth"),
}

EMBEDDING_DIM = 2048
NUM_CLASSES = 527


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, kernel_size=3, stride=1, padding=1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor, pool: tuple[int, int]) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool)


class Cnn14(nn.Module):
    """Cnn14 AudioSet tagger. ``forward(wave (B, T) float32)`` -> ``(embedding (B, 2048),
    logits (B, 527))``; ``wave`` is at ``config.sample_rate`` Hz, at least
    ``window_size // 2 + 1`` samples (reflect padding)."""

    def __init__(self, config: Cnn14Config) -> None:
        super().__init__()
        # torchlibrosa is imported here so that importing this module stays cheap.
        from torchlibrosa.stft import LogmelFilterBank, Spectrogram

        self.config = config
        self.spectrogram_extractor = Spectrogram(
            n_fft=config.window_size, hop_length=config.hop_size, win_length=config.window_size,
            window="hann", center=True, pad_mode="reflect", freeze_parameters=True,
        )
        self.logmel_extractor = LogmelFilterBank(
            sr=config.sample_rate, n_fft=config.window_size, n_mels=config.mel_bins,
            fmin=config.fmin, fmax=config.fmax, ref=1.0, amin=1e-10, top_db=None,
            freeze_parameters=True,
        )
        self.bn0 = nn.BatchNorm2d(config.mel_bins)
        chans = [1, 64, 128, 256, 512, 1024, 2048]
        for i in range(6):
            setattr(self, f"conv_block{i + 1}", _ConvBlock(chans[i], chans[i + 1]))
        self.fc1 = nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM, bias=True)
        self.fc_audioset = nn.Linear(EMBEDDING_DIM, config.classes, bias=True)

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.spectrogram_extractor(wave)  # (B, 1, frames, freq bins)
        x = self.logmel_extractor(x)  # (B, 1, frames, mel bins)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for i in range(6):
            block: _ConvBlock = getattr(self, f"conv_block{i + 1}")
            x = block(x, (2, 2) if i < 5 else (1, 1))
        x = torch.mean(x, dim=3)  # over frequency
        x = torch.max(x, dim=2).values + torch.mean(x, dim=2)  # over time
        embedding = F.relu(self.fc1(x))
        logits = self.fc_audioset(embedding)
        return embedding, logits


def build_cnn14(sample_rate: int = 16000) -> Cnn14:
    """An (untrained) Cnn14 for ``sample_rate`` 16000 or 32000 Hz, in eval mode, float32."""
    if sample_rate not in CONFIGS:
        from tas_bench.runtime.errors import TasBenchError

        raise TasBenchError(f"PANNs Cnn14 exists for 16000 and 32000 Hz, not {sample_rate}",
                            field="panns_rate")
    return Cnn14(CONFIGS[sample_rate]).float().eval()


def load_cnn14(path: str | Path, sample_rate: int = 16000, expected_sha256: str | None = None) -> Cnn14:
    """Cnn14 with the weights of ``path`` (official ``.pth`` or our ``.safetensors``)."""
    from evaluators.generation.checkpoints import load_into

    model = build_cnn14(sample_rate)
    load_into(model, path, expected_sha256)
    return model.float().eval()
