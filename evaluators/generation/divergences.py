"""KL divergences between classifier outputs and the Inception Score (PANNs AudioSet logits).

Definitions follow haoheliu/audioldm_eval ``metrics/kl.py`` and ``metrics/isc.py``:

* ``kl_softmax``: per clip, ``sum_c p_c [log p_c - log(q_c + 1e-6)]`` with ``p = softmax(ref)``
  and ``q = softmax(gen)`` (the reference's ``kl_div(log(q + eps), p, reduction="sum") / N`` is
  the mean of these per-clip sums). ``0 * log 0`` is taken as 0, as ``kl_div`` does.
* ``kl_sigmoid``: the same expression elementwise on ``sigmoid`` outputs (no ``1 - p`` terms).
* ``inception_score``: rows shuffled with ``np.random.RandomState(seed).permutation(N)``, float64,
  ``p = softmax``, split ``i`` = rows ``[i N // splits, (i + 1) N // splits)``,
  ``IS_i = exp(mean_rows sum_c p_c (log p_c - log pbar_c))``; returns (mean, std) over splits
  (``np.std``, ddof = 0).

Differences from the reference, all below 1e-6 relative on float32 logits: the reference
computes KL in float32 torch; here everything is float64 (the input logits are float32 either
way). With fewer rows than splits the reference produces empty splits and NaN; here the number
of splits is reduced to the number of rows (see :func:`inception_score`). In IS, terms with
``p_c = 0`` exactly (float64 underflow, logit gaps above ~745) count as 0 where the reference
would give NaN.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_softmax, softmax, xlogy

#: Added to the generated probabilities inside the log (the reference's EPS).
KL_EPS = 1e-6


def _as_logits(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"{name} must be (N, classes), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} has non-finite entries")
    return a


def _kl_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.sum(xlogy(p, p) - p * np.log(q + KL_EPS), axis=1)


def kl_softmax(ref_logits: np.ndarray, gen_logits: np.ndarray) -> np.ndarray:
    """Per-row KL (nats) from softmax(ref) to softmax(gen) with the reference's 1e-6 offset."""
    r = _as_logits(ref_logits, "ref_logits")
    g = _as_logits(gen_logits, "gen_logits")
    if r.shape != g.shape:
        raise ValueError(f"logit shapes differ: {r.shape} vs {g.shape}")
    return _kl_rows(softmax(r, axis=1), softmax(g, axis=1))


def kl_sigmoid(ref_logits: np.ndarray, gen_logits: np.ndarray) -> np.ndarray:
    """Per-row ``sum_c s_c [log s_c - log(t_c + 1e-6)]`` with s = sigmoid(ref), t = sigmoid(gen)."""
    r = _as_logits(ref_logits, "ref_logits")
    g = _as_logits(gen_logits, "gen_logits")
    if r.shape != g.shape:
        raise ValueError(f"logit shapes differ: {r.shape} vs {g.shape}")
    return _kl_rows(expit(r), expit(g))


def inception_score(
    logits: np.ndarray, splits: int = 10, seed: int = 2020, shuffle: bool = True
) -> tuple[float, float, int]:
    """Inception Score of generated-audio logits ``(N, classes)``: ``(mean, std, splits_used)``.

    ``splits_used = min(splits, N)`` so that no split is empty (the reference would return NaN
    when N < splits); N = 0 gives NaN.
    """
    x = _as_logits(logits, "logits") if np.asarray(logits).size else np.zeros((0, 1))
    n = x.shape[0]
    if n == 0:
        return float("nan"), float("nan"), 0
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n), :]
    k = min(int(splits), n)
    p = softmax(x, axis=1)
    log_p = log_softmax(x, axis=1)
    scores = []
    for i in range(k):
        lo, hi = i * n // k, (i + 1) * n // k
        pc, lpc = p[lo:hi], log_p[lo:hi]
        pbar = pc.mean(axis=0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = pc * (lpc - np.log(pbar))
        # 0 * log(0 / 0) = 0: a class no row of the split predicts (only possible when
        # probabilities underflow to exactly 0) adds nothing, where the reference gives NaN.
        kl = np.sum(np.where(pc > 0, terms, 0.0), axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores)), k
