"""Binaural signal metrics of FAIR-Play / YouTube-Binaural papers, batched and vectorised.

Definitions (per clip; ``pred`` and ``gt`` are (2, T) arrays at 16 kHz, channel 0 = left,
each peak-normalised as ``x / max(1e-20, max|x|)`` over both channels jointly when
``normalize`` is on, which is the default and applies to every metric below):

``stft``
    ``D_L + D_R`` with ``D_c = mean over (Re, Im) x F x T of (S_pred - S_gt)^2`` where ``S`` is
    librosa's STFT (n_fft 512, hop 160, win 400, periodic Hann zero-padded to n_fft, centred,
    ``pad_mode``; 2.5D-Visual-Sound ``evaluate.py``). Unit: squared linear amplitude.
    Computed as ``mean |STFT(pred - gt)|^2 / 2`` (linearity) with the per-frame power from
    Parseval's theorem (:func:`stft_mean_power`), so no FFT is needed for it.
``env``
    ``E_L + E_R`` with ``E_c = sqrt(mean_t (|hilbert(gt_c)| - |hilbert(pred_c)|)^2)`` over the
    whole clip (``scipy.signal.hilbert`` semantics: one FFT of the clip's exact length).
``wav``
    ``1e3 * [mean((pred_L - gt_L)^2) + mean((pred_R - gt_R)^2)]`` (CCStereo, BinauralSpeech).
``snr``
    ``10 log10((mean(gt^2) + 1e-4) / (mean((pred - gt)^2) + 1e-4))`` in dB, means over both
    channels and all samples (PseudoBinaural ``evaluate.py``). Higher is better.
``mag``
    PseudoBinaural's magnitude distance ``sum_c mean_{F x T} |S_pred,c - S_gt,c|^2``, which is
    exactly ``2 x stft``.
``phase``
    PseudoBinaural's phase distance: mean over F x T of the wrapped (to [0, pi]) difference
    ``|angle STFT(pred_L - pred_R) - angle STFT(gt_L - gt_R)|`` in radians. Convention for
    zero-magnitude bins (the reference's ``np.angle`` leaves them to the signs of zeros, so its
    value for Mono-Mono depended on the installed FFT library): a bin whose magnitude is at most
    ``PHASE_FLOOR_REL`` (1e-9) times the largest magnitude of that clip's L - R spectrogram has
    angle 0 (all bins, for an all-zero spectrogram). Introduced in version 1.1.

Implementation: clips of equal length are stacked and processed together in float64 with
``torch.fft``. The STFT frames the padded signal exactly like librosa (``n_fft // 2`` padding
each side with ``np.pad(mode=pad_mode)``, frame ``t`` starting at ``t * hop``), and the STFT
distance uses linearity and Parseval (see ``stft`` above). The envelope is the modulus of
the analytic signal ``x + j H{x}``, with the Hilbert transform ``H`` computed by a real FFT of
the clip's exact length (bins ``1 .. ceil(T/2) - 1`` multiplied by ``-j``; DC and, for even
``T``, Nyquist set to zero), which is what ``scipy.signal.hilbert`` computes.
:mod:`benchmarks.reference_signal` holds the straightforward per-file loop these are checked
against (1e-6 relative).
"""

from __future__ import annotations

import functools
import os
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch

from evaluators.base import ClipInput, ClipOutput, Evaluator, MetricSpec
from tas_bench.runtime.errors import TasBenchError

PAD_MODES = ("reflect", "constant")
SNR_EPS = 1e-4
NORM_FLOOR = 1e-20


def peak_normalize_batch(x: np.ndarray) -> np.ndarray:
    """Divide each clip of ``x`` (B, C, T) by ``max(1e-20, max|clip|)`` over channels and time."""
    peak = np.abs(x).max(axis=(-2, -1), keepdims=True, initial=0.0)
    return x / np.maximum(NORM_FLOOR, peak)


def hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` zero-padded (centred) to ``n_fft``, as librosa."""
    n = np.arange(win_length)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_length)
    out = np.zeros(n_fft)
    lpad = (n_fft - win_length) // 2
    out[lpad : lpad + win_length] = w
    return out


def _frames(x: np.ndarray, n_fft: int, hop: int, pad_mode: str) -> torch.Tensor:
    """Centred frames of ``x`` (..., T) as a (..., n_frames, n_fft) float64 tensor view."""
    pad = n_fft // 2
    widths = [(0, 0)] * (x.ndim - 1) + [(pad, pad)]
    xp = np.pad(x, widths, mode=pad_mode)
    return torch.from_numpy(np.ascontiguousarray(xp, dtype=np.float64)).unfold(-1, n_fft, hop)


def stft_frames(x: np.ndarray, n_fft: int = 512, hop_length: int = 160, win_length: int = 400,
                pad_mode: str = "reflect") -> torch.Tensor:
    """Complex128 STFT of ``x`` (..., T) laid out (..., n_frames, n_fft // 2 + 1) (time first)."""
    w = torch.from_numpy(hann_window(win_length, n_fft))
    return torch.fft.rfft(_frames(x, n_fft, hop_length, pad_mode) * w, dim=-1)


@functools.lru_cache(maxsize=16)
def _frame_weight(n_padded: int, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """``c[m] = sum_t w[m - t hop]^2`` over the frames covering padded sample m."""
    w2 = hann_window(win_length, n_fft) ** 2
    n_frames = 1 + (n_padded - n_fft) // hop_length
    c = np.zeros(n_frames * hop_length + n_fft)
    for k in range(0, n_fft, hop_length):  # frames overlap n_fft / hop times: a few strided adds
        seg = w2[k : k + hop_length]
        c[k : k + n_frames * hop_length].reshape(n_frames, hop_length)[:, : len(seg)] += seg
    c = c[:n_padded]
    return torch.from_numpy(c)


def stft_mean_power(x: np.ndarray, n_fft: int = 512, hop_length: int = 160, win_length: int = 400,
                    pad_mode: str = "reflect") -> np.ndarray:
    """``mean(|stft(x)|^2)`` over bins and frames for ``x`` (..., T), without an FFT.

    Parseval per frame: the one-sided bins hold half of ``n_fft * sum(frame^2)`` plus half of
    the DC and (even ``n_fft``) Nyquist powers, which are plain and alternating sums. Summed
    over frames, the first term is ``sum_m x_pad[m]^2 c[m]`` with ``c`` the overlap-added
    squared window, so only the two edge bins need per-frame sums.
    """
    with torch_threads(1):  # BLAS products block differently per thread count: keep the bits fixed
        return _stft_mean_power(x, n_fft, hop_length, win_length, pad_mode)


def _stft_mean_power(x: np.ndarray, n_fft: int, hop_length: int, win_length: int,
                     pad_mode: str) -> np.ndarray:
    w = torch.from_numpy(hann_window(win_length, n_fft))
    frames = _frames(x, n_fft, hop_length, pad_mode)  # (..., n_frames, n_fft) view
    n_frames = frames.shape[-2]
    padded = frames.as_strided(frames.shape[:-2] + (frames.shape[-1] + (n_frames - 1) * hop_length,),
                               frames.stride()[:-2] + (1,))
    c = _frame_weight(padded.shape[-1], n_fft, hop_length, win_length)
    cols = [w] if n_fft % 2 else [w, w * torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(n_fft // 2)]
    edge_w = torch.stack(cols, 1)
    lead = padded.shape[:-1]
    flat_padded = padded.reshape(-1, padded.shape[-1])
    flat_frames = frames.reshape(-1, n_frames, frames.shape[-1])
    total = torch.empty(flat_padded.shape[0], dtype=torch.float64)
    # One signal at a time: a batched BLAS call blocks differently for different batch sizes,
    # which would make a clip's value depend on which clips share its batch (and so on how
    # scoring was sharded). Per-signal calls give the same bits whatever the batch.
    for i in range(flat_padded.shape[0]):
        edge = flat_frames[i] @ edge_w  # (n_frames, 1 or 2): DC and Nyquist bins
        total[i] = n_fft * (flat_padded[i].square() @ c) + edge.square().sum()
    return (total.reshape(lead) / (2.0 * n_frames * (n_fft // 2 + 1))).numpy()


def stft(x: np.ndarray, n_fft: int = 512, hop_length: int = 160, win_length: int = 400,
         pad_mode: str = "reflect") -> np.ndarray:
    """``librosa.stft(x, n_fft, hop_length, win_length, window="hann", center=True, pad_mode)``
    for ``x`` (..., T): complex128 (..., n_fft // 2 + 1, n_frames), linear amplitude."""
    return stft_frames(x, n_fft, hop_length, win_length, pad_mode).transpose(-1, -2).numpy()


def envelope(x: np.ndarray) -> np.ndarray:
    """``|scipy.signal.hilbert(x)|`` along the last axis of ``x`` (..., T), float64."""
    return _envelope_t(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).numpy()


def _envelope_t(xt: torch.Tensor) -> torch.Tensor:
    n = xt.shape[-1]
    spec = torch.fft.rfft(xt, dim=-1)
    spec.mul_(-1j)  # Hilbert transform: -j on positive frequencies, 0 at DC and Nyquist
    spec[..., 0] = 0
    if n % 2 == 0:
        spec[..., -1] = 0
    return torch.hypot(xt, torch.fft.irfft(spec, n=n, dim=-1))


#: Zero-magnitude convention of the phase distance: a bin of an L - R spectrogram whose magnitude
#: is at most this fraction of the largest magnitude in that clip's spectrogram has angle 0
#: (every bin, when the spectrogram is all zero). Without it the angle of an exactly zero bin
#: (L = R, e.g. Mono-Mono) is 0 or +-pi by the signs of zeros, which differ between FFT
#: libraries and versions; round-off bins (~1e-16 relative) are caught by the same floor.
PHASE_FLOOR_REL = 1e-9


def _angle_floored(x: torch.Tensor) -> torch.Tensor:
    """``angle(x)`` over the last two axes, 0 where ``|x| <= PHASE_FLOOR_REL * max|x|``."""
    r = torch.view_as_real(x)
    re, im = r[..., 0].contiguous(), r[..., 1].contiguous()
    mag = torch.hypot(re, im)
    floor = PHASE_FLOOR_REL * mag.amax(dim=(-2, -1), keepdim=True)
    ang = torch.atan2(im, re)
    return torch.where(mag > floor, ang, torch.zeros_like(ang))


def _phase_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over the last two axes of the wrapped ``|angle(a) - angle(b)|`` in [0, pi].

    Angles follow the zero-magnitude convention of :data:`PHASE_FLOOR_REL`. ``atan2`` on
    contiguous real and imaginary parts: torch vectorises that, not ``angle``.
    """
    d = _angle_floored(a).sub_(_angle_floored(b)).abs_()
    return torch.minimum(d, (2.0 * np.pi - d).clamp_(min=0.0)).mean(dim=(-2, -1))


#: Samples per channel processed in one vectorised step: a couple of 10 s clips. Larger stacks
#: are slower, not faster (the temporaries leave the CPU caches), so a batch is cut into chunks.
CHUNK_SAMPLES = 400_000


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (``None``: leave as is), then restore.

    The FFTs split independent transforms across threads (same bits for any thread count);
    products that BLAS would block per thread count run single-threaded (see
    :func:`stft_mean_power`). On a machine shared by several busy processes, fewer threads
    can be faster (measured: 1 thread 3x faster than 2 on 2 oversubscribed cores).
    """
    old = torch.get_num_threads()
    change = n is not None and n != old
    if change:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(old)


def signal_metrics_batch(pred: np.ndarray, gt: np.ndarray, *, normalize: bool = True,
                         pad_mode: str = "reflect", n_fft: int = 512, hop_length: int = 160,
                         win_length: int = 400, threads: int | None = 1) -> dict[str, np.ndarray]:
    """All signal metrics for a stack of equal-length clips ``pred``, ``gt`` (B, 2, T).

    Returns ``{metric: (B,) float64}`` for ``stft``, ``env``, ``wav``, ``snr`` (dB), ``mag`` and
    ``phase`` (radians), defined as in the module docstring. ``threads``: torch intra-op
    threads to use (``None`` = torch's setting); it does not change the values.
    """
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[1] != 2 or pred.shape[2] < 1:
        raise TasBenchError(f"pred {pred.shape} and gt {gt.shape} must both be (B, 2, T), T >= 1")
    step = max(1, CHUNK_SAMPLES // pred.shape[-1])
    with torch_threads(threads):
        parts = [_metrics_chunk(pred[i : i + step], gt[i : i + step], normalize, pad_mode, n_fft,
                                hop_length, win_length) for i in range(0, pred.shape[0], step)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _metrics_chunk(pred: np.ndarray, gt: np.ndarray, normalize: bool, pad_mode: str, n_fft: int,
                   hop_length: int, win_length: int) -> dict[str, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if normalize:
        pred = peak_normalize_batch(pred)
        gt = peak_normalize_batch(gt)
    d = pred - gt
    msd = np.mean(d * d, axis=-1)  # (B, 2)
    wav = 1e3 * msd.sum(axis=-1)
    snr = 10.0 * np.log10((np.mean(gt * gt, axis=(-2, -1)) + SNR_EPS) / (msd.mean(axis=-1) + SNR_EPS))

    ed = _envelope_t(torch.from_numpy(gt)).sub_(_envelope_t(torch.from_numpy(pred)))
    env = torch.sqrt(ed.square_().mean(dim=-1)).sum(dim=-1).numpy()

    # mean over (Re, Im) x F x T of (S_pred - S_gt)^2 = mean |STFT(pred - gt)|^2 / 2
    stft_d = stft_mean_power(d, n_fft, hop_length, win_length, pad_mode).sum(axis=-1) / 2.0
    sig = np.stack([pred[:, 0] - pred[:, 1], gt[:, 0] - gt[:, 1]], axis=1)
    spec = stft_frames(sig, n_fft, hop_length, win_length, pad_mode)  # (B, 2, frames, F)
    phase = _phase_distance(spec[:, 0], spec[:, 1]).numpy()
    return {"stft": stft_d, "env": env, "wav": wav, "snr": snr, "mag": 2.0 * stft_d,
            "phase": phase}


class SignalEvaluator(Evaluator):
    """STFT / ENV / WAV / SNR / magnitude / phase distances between prediction and reference.

    Options: ``normalize`` (bool, default True: peak normalisation before every metric),
    ``pad_mode`` (``"reflect"`` default, the published definition, or ``"constant"``, librosa
    >= 0.10's default), ``n_fft`` (512), ``hop_length`` (160), ``win_length`` (400), and
    ``threads`` (torch intra-op threads while computing, default: the available cores, at most
    4; a speed setting that does not change any value, so it is left out of :meth:`config` and
    of cache keys).
    """

    name: ClassVar[str] = "signal"
    version: ClassVar[str] = "1.1"
    sample_rate: int = 16000
    batch_size: int = 32
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("stft", False, "linear amplitude^2",
                   "STFT distance D_L + D_R: mean squared Re/Im difference of the STFTs "
                   "(n_fft 512, hop 160, win 400), summed over ears (FAIR-Play)"),
        MetricSpec("env", False, "linear amplitude",
                   "envelope distance: RMS difference of Hilbert envelopes, summed over ears"),
        MetricSpec("wav", False, "1e-3 linear amplitude^2",
                   "10^3 x sum over ears of the mean squared waveform difference"),
        MetricSpec("snr", True, "dB",
                   "10 log10((mean(gt^2) + 1e-4) / (mean((pred - gt)^2) + 1e-4)), both ears"),
        MetricSpec("mag", False, "linear amplitude^2",
                   "PseudoBinaural magnitude distance sum_c mean |S_pred - S_gt|^2 (= 2 x stft)"),
        MetricSpec("phase", False, "rad",
                   "PseudoBinaural phase distance: mean wrapped |angle STFT(L - R) pred - gt|"),
    )

    def __init__(self, *, normalize: bool = True, pad_mode: str = "reflect", n_fft: int = 512,
                 hop_length: int = 160, win_length: int = 400, threads: int | None = None,
                 **unknown: Any) -> None:
        super().__init__(**unknown)
        if not isinstance(normalize, bool):
            raise TasBenchError(f"expected true or false, got {normalize!r}", field="signal.normalize")
        if pad_mode not in PAD_MODES:
            raise TasBenchError(f"{pad_mode!r} is not one of {list(PAD_MODES)}",
                                field="signal.pad_mode")
        if threads is None:
            threads = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
        for fld, v in (("n_fft", n_fft), ("hop_length", hop_length), ("win_length", win_length),
                       ("threads", threads)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise TasBenchError(f"expected a positive integer, got {v!r}", field=f"signal.{fld}")
        if win_length > n_fft:
            raise TasBenchError(f"win_length {win_length} exceeds n_fft {n_fft}",
                                field="signal.win_length")
        self.normalize = normalize
        self.pad_mode = pad_mode
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.threads = threads

    def config(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "normalize": self.normalize,
                "pad_mode": self.pad_mode, "n_fft": self.n_fft, "hop_length": self.hop_length,
                "win_length": self.win_length, "window": "hann", "center": True,
                "phase_floor_rel": PHASE_FLOOR_REL}

    def process_batch(self, batch: list[ClipInput]) -> list[ClipOutput]:
        groups: dict[int, list[int]] = defaultdict(list)
        for i, item in enumerate(batch):
            if item.pred.shape != item.ref.shape or item.ref.ndim != 2 or item.ref.shape[0] != 2:
                raise TasBenchError(f"pred {item.pred.shape} and ref {item.ref.shape} must both "
                                    "be (2, T)", field=f"clip {item.clip.id}")
            groups[item.ref.shape[1]].append(i)
        outs: list[ClipOutput | None] = [None] * len(batch)
        for idx in groups.values():
            pred = np.stack([batch[i].pred for i in idx])
            ref = np.stack([batch[i].ref for i in idx])
            vals = signal_metrics_batch(pred, ref, normalize=self.normalize,
                                        pad_mode=self.pad_mode, n_fft=self.n_fft,
                                        hop_length=self.hop_length, win_length=self.win_length,
                                        threads=self.threads)
            for j, i in enumerate(idx):
                outs[i] = ClipOutput(values={k: float(v[j]) for k, v in vals.items()})
        return [o for o in outs if o is not None]
