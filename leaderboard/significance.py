"""Paired bootstrap test over clips for "system A is better than system B" on one metric.

Only per-clip values of clips that both systems scored (same dataset fingerprint) are used.
With d_k = a_k - b_k (or b_k - a_k when lower is better), so that d > 0 favours A, the test
draws ``n_boot`` resamples of the clips with replacement from a seeded generator and reports
p = fraction of resampled mean differences <= 0 (on the wrong side). A one-sided bootstrap
p-value; A is called significantly better when p < alpha.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_BOOTSTRAP = 2000
DEFAULT_SEED = 0
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class BootstrapConfig:
    """Number of resamples, RNG seed and p-value threshold of the paired bootstrap."""

    n_boot: int = DEFAULT_BOOTSTRAP
    seed: int = DEFAULT_SEED
    alpha: float = DEFAULT_ALPHA

    def describe(self) -> str:
        """One sentence stating the test, for the text under a table."""
        return (f"† = significantly better than the next-ranked system in that column: one-sided "
                f"paired bootstrap over the clips both systems scored (B = {self.n_boot} "
                f"resamples, numpy default_rng seed {self.seed}), p = share of resampled mean "
                f"differences on the wrong side, marked when p < {self.alpha:g}. Corpus-level "
                "metrics (no per-clip values) are not tested.")


@dataclass(frozen=True)
class PairedResult:
    """Outcome of one paired bootstrap: shared clips, observed mean difference, p-value."""

    n_shared: int
    mean_diff: float
    p_value: float


def paired_bootstrap(a: dict[str, float], b: dict[str, float], *, higher_is_better: bool,
                     config: BootstrapConfig = BootstrapConfig()) -> PairedResult | None:
    """Test whether ``a`` beats ``b`` (clip id -> value); None if fewer than 2 shared clips.

    ``mean_diff`` is in the metric's unit, positive when A is better.
    """
    shared = sorted(set(a) & set(b))
    if len(shared) < 2:
        return None
    x = np.array([a[k] for k in shared], dtype=np.float64)
    y = np.array([b[k] for k in shared], dtype=np.float64)
    d = (x - y) if higher_is_better else (y - x)
    rng = np.random.default_rng(config.seed)
    idx = rng.integers(0, len(d), size=(config.n_boot, len(d)))
    boot = d[idx].mean(axis=1)
    p = float(np.mean(boot <= 0.0))
    return PairedResult(n_shared=len(shared), mean_diff=float(d.mean()), p_value=p)
