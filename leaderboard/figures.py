"""Per-system figures for the HTML page, as PNG bytes (matplotlib, Agg backend).

* Spectrograms: log-magnitude STFT (dB) of the left and right channels, reference vs
  prediction, for one or two single-source test clips.
* ITD/ILD comparison (like the paper's Figure 3): per-clip ITD (µs) and ILD (dB) of the
  prediction against the reference, from ``per_clip.csv`` columns ``itd_pred_us``,
  ``itd_ref_us``, ``ild_pred_db``, ``ild_ref_db`` when present, else computed here with a
  plain cross-correlation ITD (|lag| <= 1 ms) and a broadband ILD = 10 log10(ΣL² / ΣR²).

When the dataset or prediction folders named in results.json are gone, no figure is drawn and
the reason is returned instead.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from leaderboard.collect import MeasuredResult

MAX_ITD_S = 1e-3
N_FFT = 512


@dataclass
class Figure:
    """One drawn figure: title, PNG bytes and a short caption."""

    title: str
    png: bytes
    caption: str = ""

    def data_uri(self) -> str:
        """The PNG as a ``data:image/png;base64,...`` URI."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class FigureSet:
    """Figures of one measured system, plus reasons for the ones that could not be drawn."""

    figures: list[Figure] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def itd_ild(x: np.ndarray, sr: int) -> tuple[float, float]:
    """ITD in µs (positive = right channel lags the left) and broadband ILD in dB (L over R)
    of a (2, T) signal; plain cross-correlation restricted to |lag| <= 1 ms."""
    left, right = np.asarray(x[0], np.float64), np.asarray(x[1], np.float64)
    n = 1 << int(np.ceil(np.log2(2 * len(left))))
    cc = np.fft.irfft(np.conj(np.fft.rfft(left, n)) * np.fft.rfft(right, n), n)
    max_lag = int(round(MAX_ITD_S * sr))
    lags = np.arange(-max_lag, max_lag + 1)
    lag = int(lags[np.argmax(cc[lags % n])])
    el, er = float(np.sum(left**2)), float(np.sum(right**2))
    ild = 10.0 * np.log10((el + 1e-12) / (er + 1e-12))
    return lag / sr * 1e6, ild


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, metadata={"Software": None})
    _pyplot().close(fig)
    return buf.getvalue()


def _log_spec(x: np.ndarray) -> np.ndarray:
    from scipy.signal import stft

    _, _, z = stft(x, nperseg=N_FFT, noverlap=N_FFT - N_FFT // 4, boundary=None)
    return 20.0 * np.log10(np.abs(z) + 1e-8)


def spectrogram_figure(ref: np.ndarray, pred: np.ndarray, sr: int, title: str) -> bytes:
    """PNG of log-spectrograms (dB): rows L, R; columns reference, prediction."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(7, 4.2), sharex=True, sharey=True)
    specs = {(i, j): _log_spec(sig[i]) for i in range(2) for j, sig in enumerate((ref, pred))}
    vmax = max(float(s.max()) for s in specs.values())
    dur = ref.shape[1] / sr
    for (i, j), s in specs.items():
        ax = axes[i, j]
        ax.imshow(s, origin="lower", aspect="auto", cmap="magma", vmin=vmax - 80, vmax=vmax,
                  extent=(0, dur, 0, sr / 2000))
        ax.set_title(f"{('reference', 'prediction')[j]} — {('left', 'right')[i]}", fontsize=9)
        if j == 0:
            ax.set_ylabel("kHz")
        if i == 1:
            ax.set_xlabel("s")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def itd_ild_figure(itd_ref: np.ndarray, itd_pred: np.ndarray, ild_ref: np.ndarray,
                   ild_pred: np.ndarray, title: str) -> bytes:
    """PNG with two scatter plots: predicted vs reference ITD (µs) and ILD (dB)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.3))
    for ax, ref, pred, unit, name in ((axes[0], itd_ref, itd_pred, "µs", "ITD"),
                                      (axes[1], ild_ref, ild_pred, "dB", "ILD")):
        ax.scatter(ref, pred, s=12, alpha=0.7)
        both = np.concatenate([ref, pred]) if len(ref) else np.array([0.0])
        lo, hi = float(both.min()), float(both.max())
        pad = 0.05 * (hi - lo) + 1e-9
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        ax.set_xlabel(f"reference {name} ({unit})")
        ax.set_ylabel(f"predicted {name} ({unit})")
        ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)


def system_figures(r: MeasuredResult, *, max_clips: int = 2, max_cue_clips: int = 64) -> FigureSet:
    """Draw the figures of one measured system; never raises for missing/bad input files."""
    from tas_bench.data.manifest import load_dataset
    from tas_bench.runtime.audio_io import read_audio
    from tas_bench.runtime.errors import TasBenchError

    out = FigureSet()
    if not r.dataset_path or not Path(r.dataset_path).is_dir():
        out.problems.append(f"dataset folder {r.dataset_path} not found: no figures")
        return out
    if not r.predictions_path or not Path(r.predictions_path).is_dir():
        out.problems.append(f"predictions folder {r.predictions_path} not found: no figures")
        return out
    try:
        ds = load_dataset(r.dataset_path, strict=False)
    except TasBenchError as exc:
        out.problems.append(f"cannot load dataset: {exc}")
        return out
    pred_dir = Path(r.predictions_path)
    clips = [c for c in ds.split(r.split if r.split in ("train", "val", "test") else None)
             if (pred_dir / f"{c.id}.wav").is_file()]
    single = [c for c in clips if len(c.sources) == 1] or clips
    for clip in single[:max_clips]:
        try:
            ref = read_audio(ds.audio_path(clip), channels=2)
            pred = read_audio(pred_dir / f"{clip.id}.wav", channels=2, sample_rate=ref.sample_rate)
        except TasBenchError as exc:
            out.problems.append(f"clip {clip.id}: {exc}")
            continue
        t = min(ref.samples.shape[1], pred.samples.shape[1])
        label = clip.sources[0].label if clip.sources else clip.category
        out.figures.append(Figure(
            f"Spectrograms, clip {clip.id}",
            spectrogram_figure(ref.samples[:, :t], pred.samples[:, :t], ref.sample_rate,
                               f"{r.system}: clip {clip.id} ({label})"),
            f"Log-magnitude STFT (dB, {N_FFT}-point Hann) of reference vs prediction."))
    if not single:
        out.problems.append("no clip of the dataset has a prediction file: no spectrograms")
    cue_cols = ("itd_ref_us", "itd_pred_us", "ild_ref_db", "ild_pred_db")
    pc = r.per_clip or {}
    if all(pc.get(c) for c in cue_cols):
        ids = sorted(set.intersection(*(set(pc[c]) for c in cue_cols)))
        arrs = [np.array([pc[c][i] for i in ids]) for c in cue_cols]
        source = "per_clip.csv (cue evaluator)"
    else:
        vals = []
        for clip in single[:max_cue_clips]:
            try:
                ref = read_audio(ds.audio_path(clip), channels=2)
                pred = read_audio(pred_dir / f"{clip.id}.wav", channels=2, sample_rate=ref.sample_rate)
            except TasBenchError:
                continue
            (ir, lr), (ip, lp) = itd_ild(ref.samples, ref.sample_rate), itd_ild(pred.samples, ref.sample_rate)
            vals.append((ir, ip, lr, lp))
        arrs = [np.array(v) for v in zip(*vals)] if vals else []
        source = "computed here: cross-correlation ITD (|lag| ≤ 1 ms), broadband ILD"
    if arrs and len(arrs[0]):
        out.figures.append(Figure(
            "ITD / ILD: prediction vs reference",
            itd_ild_figure(arrs[0], arrs[1], arrs[2], arrs[3], f"{r.system}: {len(arrs[0])} clips"),
            f"One point per clip; dashed line = perfect agreement. Source: {source}."))
    else:
        out.problems.append("no clip with ITD/ILD values: no cue figure")
    return out
