"""VGGish (harritaylor/torchvggish port of the TensorFlow AudioSet model), as audioldm_eval's FAD.

Our own definition; parameter names match ``vggish-10086976.pth`` (``features.{0,3,6,8,11,13}``,
``embeddings.{0,2,4}``). Used with ``postprocess=False`` (no PCA / quantisation) and the final
ReLU removed, as ``audioldm_eval/metrics/fad.py`` does, so an embedding is the raw output of
the last linear layer (128-d, may be negative).

Front end (TensorFlow ``vggish_input`` / ``mel_features``, computed in float64 NumPy like the
reference): 16 kHz mono; frames of 400 samples (25 ms) every 160 samples (10 ms), no padding,
periodic Hann window, |rfft| with 512 points; HTK-mel matrix with 64 bands 125–7500 Hz (DC bin
zeroed); ``log(mel + 0.01)``; non-overlapping examples of 96 frames (0.96 s), incomplete
examples dropped. Frame counts: ``F = 1 + (T - 400) // 160`` STFT frames and
``E = 1 + (F - 96) // 96`` examples when ``F >= 96``, else 0 (clips shorter than 15 600 samples
give no embedding).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

SAMPLE_RATE = 16000
WINDOW = 400  # 0.025 s at 16 kHz
HOP = 160  # 0.010 s
FFT = 512  # next power of two >= WINDOW
MEL_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s
EMBEDDING_DIM = 128
WEIGHTS = "vggish-10086976.pth"


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_matrix(num_bins: int = FFT // 2 + 1) -> np.ndarray:
    """The (num_bins, 64) HTK triangular mel weights of VGGish (TF ``spectrogram_to_mel_matrix``)."""
    nyquist = SAMPLE_RATE / 2.0
    bins_mel = _hz_to_mel(np.linspace(0.0, nyquist, num_bins))
    edges = np.linspace(_hz_to_mel(MEL_MIN_HZ), _hz_to_mel(MEL_MAX_HZ), MEL_BANDS + 2)
    w = np.empty((num_bins, MEL_BANDS))
    for i in range(MEL_BANDS):
        lo, centre, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (bins_mel - lo) / (centre - lo)
        falling = (hi - bins_mel) / (hi - centre)
        w[:, i] = np.maximum(0.0, np.minimum(rising, falling))
    w[0, :] = 0.0
    return w


_MEL = mel_matrix()
_WINDOW_FN = 0.5 - 0.5 * np.cos(2.0 * np.pi / WINDOW * np.arange(WINDOW))  # periodic Hann


def num_examples(n_samples: int) -> int:
    """Number of 0.96 s VGGish examples (= embeddings) for a 16 kHz signal of ``n_samples``."""
    if n_samples < WINDOW:
        return 0
    frames = 1 + (n_samples - WINDOW) // HOP
    if frames < EXAMPLE_FRAMES:
        return 0
    return 1 + (frames - EXAMPLE_FRAMES) // EXAMPLE_FRAMES


def log_mel_examples(wave: np.ndarray) -> np.ndarray:
    """VGGish input examples ``(E, 96, 64)`` (float64) of a mono 16 kHz signal ``(T,)``."""
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected a mono signal (T,), got shape {x.shape}")
    e = num_examples(x.shape[0])
    if e == 0:
        return np.zeros((0, EXAMPLE_FRAMES, MEL_BANDS))
    n_frames = 1 + (x.shape[0] - WINDOW) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(x, WINDOW)[::HOP][:n_frames]
    spec = np.abs(np.fft.rfft(frames * _WINDOW_FN, FFT))
    log_mel = np.log(spec @ _MEL + LOG_OFFSET)
    return log_mel[: e * EXAMPLE_FRAMES].reshape(e, EXAMPLE_FRAMES, MEL_BANDS)


class VGGish(nn.Module):
    """VGGish without post-processing and without the final ReLU.

    ``forward(examples (E, 1, 96, 64) float32)`` -> embeddings ``(E, 128)``.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(cin, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = int(v)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_DIM),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (E, 512, 6, 4)
        # TF layout (E, 6, 4, 512) before flattening, as the port does.
        x = x.permute(0, 2, 3, 1).contiguous().view(x.shape[0], -1)
        return self.embeddings(x)

    @torch.no_grad()
    def embed(self, wave: np.ndarray) -> np.ndarray:
        """Embeddings ``(E, 128)`` float32 of a mono 16 kHz signal (E may be 0)."""
        ex = log_mel_examples(wave)
        if ex.shape[0] == 0:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        device = next(self.parameters()).device
        t = torch.from_numpy(ex).float()[:, None, :, :].to(device)
        return self(t).cpu().numpy().astype(np.float32, copy=False)


def build_vggish() -> VGGish:
    """An (untrained) VGGish in eval mode, float32."""
    return VGGish().float().eval()


def load_vggish(path: str | Path, expected_sha256: str | None = None) -> VGGish:
    """VGGish with the weights of ``path`` (``vggish-10086976.pth`` or our ``.safetensors``)."""
    from evaluators.generation.checkpoints import load_into

    model = build_vggish()
    load_into(model, path, expected_sha256)
    return model.float().eval()
