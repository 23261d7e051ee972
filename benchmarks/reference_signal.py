"""Per-file reference implementation of the binaural signal metrics.

A straightforward loop in the style of the original evaluation scripts (2.5D-Visual-Sound and
PseudoBinaural ``evaluate.py``): ``librosa.stft`` per channel with ``pad_mode`` passed
explicitly (the scripts relied on librosa's then-default ``reflect``), ``scipy.signal.hilbert``
per channel, numpy means. Computed in float64 (the scripts loaded float32 audio). The batched
:mod:`evaluators.signal` is checked against it (1e-6 relative) and timed against it by
``benchmarks/bench_score.py``.
"""

from __future__ import annotations

import librosa
import numpy as np
from scipy.signal import hilbert


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(1e-20, np.max(np.abs(x)))


def _stft(x: np.ndarray, pad_mode: str) -> np.ndarray:
    return librosa.stft(np.asfortranarray(x), n_fft=512, hop_length=160, win_length=400,
                        window="hann", center=True, pad_mode=pad_mode)


def _angle_floored(spec: np.ndarray) -> np.ndarray:
    """``np.angle`` with the documented zero-magnitude convention: bins with magnitude at most
    1e-9 x the spectrogram's largest magnitude have angle 0 (see evaluators.signal)."""
    mag = np.abs(spec)
    return np.where(mag > 1e-9 * mag.max(initial=0.0), np.angle(spec), 0.0)


def reference_signal_metrics(pred: np.ndarray, gt: np.ndarray, normalize: bool = True,
                             pad_mode: str = "reflect") -> dict[str, float]:
    """STFT, ENV, WAV, SNR (dB), magnitude and phase (rad) distances of one clip.

    ``pred`` and ``gt`` are (2, T) arrays at 16 kHz, channel 0 = left.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if normalize:
        pred = _normalize(pred)
        gt = _normalize(gt)
    sp = [_stft(pred[c], pad_mode) for c in range(2)]
    sg = [_stft(gt[c], pad_mode) for c in range(2)]

    stft_d = 0.0
    for c in range(2):
        p_ri = np.stack([np.real(sp[c]), np.imag(sp[c])])
        g_ri = np.stack([np.real(sg[c]), np.imag(sg[c])])
        stft_d += float(np.mean((p_ri - g_ri) ** 2))

    env = 0.0
    for c in range(2):
        pe = np.abs(hilbert(pred[c]))
        ge = np.abs(hilbert(gt[c]))
        env += float(np.sqrt(np.mean((ge - pe) ** 2)))

    wav = 1e3 * float(np.mean((pred[0] - gt[0]) ** 2) + np.mean((pred[1] - gt[1]) ** 2))
    mse = np.mean((pred - gt) ** 2)
    snr = float(10.0 * np.log10((np.mean(gt**2) + 1e-4) / (mse + 1e-4)))

    mag = float(sum(np.mean(np.abs(sp[c] - sg[c]) ** 2) for c in range(2)))

    pred_ang = _angle_floored(_stft(pred[0] - pred[1], pad_mode))
    gt_ang = _angle_floored(_stft(gt[0] - gt[1], pad_mode))
    diff = np.abs(pred_ang - gt_ang)
    phase = float(np.mean(np.minimum(diff, np.clip(2 * np.pi - diff, 0.0, 2 * np.pi))))
    return {"stft": stft_d, "env": env, "wav": wav, "snr": snr, "mag": mag, "phase": phase}
