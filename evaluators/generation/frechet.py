"""Fréchet distance between Gaussians fitted to embeddings (FD on PANNs, FAD on VGGish).

Definition (haoheliu/audioldm_eval ``metrics/fid.py`` and ``metrics/fad.py``, after
mseitzer/pytorch-fid)::

    FD = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr sqrt(S1 S2)

with ``mu`` the mean and ``S`` the ``np.cov(rowvar=False)`` covariance (ddof = 1).

The reported value takes ``Tr sqrt(S1 S2)`` from eigenvalues: ``S1 S2`` is similar to the
symmetric positive semi-definite ``sqrt(S1) S2 sqrt(S1)``, so the trace of its square root is
the sum of the square roots of that matrix's eigenvalues (eigenvalues below the round-off
level ``dim * eps * largest``, including tiny negative ones, are set to 0). This is the stable route fadtk takes. The reference route,
``scipy.linalg.sqrtm(S1 @ S2)`` with the audioldm_eval rules (non-finite -> retry with 1e-6 I
added to both covariances; imaginary diagonal above 1e-3 -> error; else the real part), is
computed as a cross-check and both values are returned in ``info``. ``sqrtm`` is unstable on
rank-deficient products (pytorch-fid #13, scipy #19415), which is why it is not the primary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg

#: Offset the reference adds to both covariances when ``sqrtm`` is not finite.
SQRTM_EPS = 1e-6
#: Largest imaginary diagonal entry of ``sqrtm`` the reference accepts.
IMAG_ATOL = 1e-3


def _sqrtm(a: np.ndarray) -> np.ndarray:
    out = scipy.linalg.sqrtm(a)
    # scipy < 1.16 returns (sqrtm, errest) when disp=False; the default returns the matrix.
    return out[0] if isinstance(out, tuple) else out


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """``Tr sqrt(sigma1 @ sigma2)`` for symmetric PSD matrices, from eigenvalues (float64)."""
    w1, v1 = np.linalg.eigh(sigma1)
    w1 = _clip_noise(w1)
    keep = w1 > 0
    if not keep.any():
        return 0.0
    # sqrt(S1) S2 sqrt(S1) = V_r [B^T S2 B] V_r^T with B = V_r sqrt(L_r): same non-zero
    # eigenvalues as the r x r matrix B^T S2 B (r = rank of S1), which is cheaper when r < d.
    b = v1[:, keep] * np.sqrt(w1[keep])
    m = b.T @ sigma2 @ b
    m = 0.5 * (m + m.T)
    return float(np.sum(np.sqrt(_clip_noise(np.linalg.eigvalsh(m)))))


def _clip_noise(w: np.ndarray) -> np.ndarray:
    """Eigenvalues with round-off noise (below ``dim * eps * max``, or negative) set to 0.

    Without this, the square roots of ~1e-16 noise eigenvalues of a singular matrix add up to
    ~1e-7 and make the distance between identical rank-deficient sets slightly negative.
    """
    tol = max(float(w.max(initial=0.0)), 0.0) * w.shape[0] * np.finfo(np.float64).eps
    return np.where(w > tol, w, 0.0)


def trace_sqrt_product_sqrtm(sigma1: np.ndarray, sigma2: np.ndarray) -> tuple[float, dict[str, Any]]:
    """``Tr sqrt(sigma1 @ sigma2)`` the way audioldm_eval computes it (``scipy.linalg.sqrtm``).

    Returns the trace and ``{"offset_added": bool, "max_imag": float}``. Raises ``ValueError``
    when the imaginary part of the diagonal exceeds 1e-3 (the reference asserts).
    """
    info: dict[str, Any] = {"offset_added": False, "max_imag": 0.0}
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * SQRTM_EPS
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        info["offset_added"] = True
    if np.iscomplexobj(covmean):
        info["max_imag"] = float(np.max(np.abs(covmean.imag))) if covmean.size else 0.0
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=IMAG_ATOL):
            raise ValueError(f"sqrtm has an imaginary component of {info['max_imag']:.3g}")
        covmean = covmean.real
    return float(np.trace(covmean)), info


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
    cross_check: bool = True,
) -> tuple[float, dict[str, Any]]:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in squared embedding units.

    Returns ``(value, info)``; ``info`` holds ``fd_sqrtm`` (the reference route's value, or NaN
    when it failed), ``sqrtm_error`` (why it failed, if it did), ``discrepancy`` (absolute
    difference between the two routes), ``sqrtm_offset_added`` and the terms of the sum.
    ``cross_check=False`` skips the ``sqrtm`` route (about a minute for 2048 dimensions on two
    CPU cores); its fields are then NaN / None.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"mean vectors have different shapes {mu1.shape} and {mu2.shape}")
    d = mu1.shape[0]
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"covariances {s1.shape}, {s2.shape} do not match dimension {d}")
    for name, arr in (("mu1", mu1), ("mu2", mu2), ("sigma1", s1), ("sigma2", s2)):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} has non-finite entries")
    diff = mu1 - mu2
    mean_term = float(diff @ diff)
    tr1 = float(np.trace(s1))
    tr2 = float(np.trace(s2))
    tr_eig = trace_sqrt_product(s1, s2)
    value = mean_term + tr1 + tr2 - 2.0 * tr_eig
    info: dict[str, Any] = {
        "mean_term": mean_term,
        "trace1": tr1,
        "trace2": tr2,
        "tr_sqrt_eig": tr_eig,
        "method": "eigenvalues",
    }
    if not cross_check:
        info.update(fd_sqrtm=float("nan"), sqrtm_error=None, discrepancy=float("nan"),
                    sqrtm_offset_added=False, tr_sqrt_sqrtm=float("nan"), cross_checked=False)
        return value, info
    info["cross_checked"] = True
    try:
        tr_sqrtm, sq_info = trace_sqrt_product_sqrtm(s1, s2)
    except (ValueError, np.linalg.LinAlgError, scipy.linalg.LinAlgError) as exc:
        info.update(fd_sqrtm=float("nan"), sqrtm_error=str(exc), discrepancy=float("nan"),
                    sqrtm_offset_added=False, tr_sqrt_sqrtm=float("nan"))
    else:
        fd_sqrtm = mean_term + tr1 + tr2 - 2.0 * tr_sqrtm
        info.update(fd_sqrtm=fd_sqrtm, sqrtm_error=None, discrepancy=abs(fd_sqrtm - value),
                    sqrtm_offset_added=sq_info["offset_added"], tr_sqrt_sqrtm=tr_sqrtm,
                    sqrtm_max_imag=sq_info["max_imag"])
    return value, info


@dataclass
class GaussianStats:
    """Mergeable sufficient statistics of a set of ``dim``-dimensional vectors (float64).

    ``n`` rows, their ``total`` (sum) and ``outer`` (sum of outer products). ``mean()`` and
    ``cov()`` reproduce ``np.mean(axis=0)`` and ``np.cov(rowvar=False)`` (ddof = 1).
    """

    dim: int
    n: int = 0
    total: np.ndarray = field(default=None)  # type: ignore[assignment]
    outer: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.total is None:
            self.total = np.zeros(self.dim, dtype=np.float64)
        if self.outer is None:
            self.outer = np.zeros((self.dim, self.dim), dtype=np.float64)

    def update(self, rows: np.ndarray) -> None:
        """Add the rows of ``rows`` (shape (k, dim); k may be 0)."""
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected rows of dimension {self.dim}, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("embedding rows have non-finite entries")
        self.n += x.shape[0]
        self.total += x.sum(axis=0)
        self.outer += x.T @ x

    def merge(self, other: GaussianStats) -> GaussianStats:
        """A new object holding the statistics of both sets."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge statistics of dimension {self.dim} and {other.dim}")
        return GaussianStats(self.dim, self.n + other.n, self.total + other.total,
                             self.outer + other.outer)

    def mean(self) -> np.ndarray:
        """Mean vector (NaN when empty)."""
        if self.n == 0:
            return np.full(self.dim, np.nan)
        return self.total / self.n

    def cov(self) -> np.ndarray:
        """Unbiased covariance (ddof = 1), as ``np.cov(rows, rowvar=False)``; NaN when n < 2."""
        if self.n < 2:
            return np.full((self.dim, self.dim), np.nan)
        mu = self.total / self.n
        c = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return 0.5 * (c + c.T)

    def rank_warning(self, label: str) -> str | None:
        """A warning when the covariance is rank-deficient (n <= dim), else ``None``."""
        if self.n <= self.dim:
            return (f"{label}: {self.n} vectors for {self.dim} dimensions, so the covariance is "
                    "rank-deficient (n <= dim); the Fréchet distance is biased and not comparable "
                    "to values computed on larger sets")
        return None


def frechet_from_stats(a: GaussianStats, b: GaussianStats,
                       cross_check: bool = True) -> tuple[float, dict[str, Any]]:
    """Fréchet distance between the Gaussians fitted to two sets; NaN when either has n < 2."""
    if a.n < 2 or b.n < 2:
        return float("nan"), {"error": f"need at least 2 vectors per set, got {a.n} and {b.n}"}
    return frechet_distance(a.mean(), a.cov(), b.mean(), b.cov(), cross_check=cross_check)
