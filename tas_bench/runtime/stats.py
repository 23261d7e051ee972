"""Summary statistics for per-clip metric values."""

from __future__ import annotations

import numpy as np

#: Bootstrap settings recorded in every results file; changing them changes CIs, so they are
#: part of the results schema version.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def summarize(values: np.ndarray, *, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED) -> dict[str, float | int | list[float] | None]:
    """Mean, sample std (ddof=1), 95 % percentile-bootstrap CI of the mean, and n.

    Non-finite values (metric undefined for a clip) are excluded; ``n`` counts the rest.
    With n == 0 every statistic is None; with n == 1 std and CI are None.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return {"mean": None, "std": None, "ci95": None, "n": 0}
    mean = float(v.mean())
    if n == 1:
        return {"mean": mean, "std": None, "ci95": None, "n": 1}
    rng = np.random.default_rng(seed)
    means = np.empty(resamples, dtype=np.float64)
    step = max(1, 2_000_000 // n)  # bound the index matrix to ~16 MB
    for start in range(0, resamples, step):
        stop = min(resamples, start + step)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = v[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": mean, "std": float(v.std(ddof=1)), "ci95": [float(lo), float(hi)], "n": n}
