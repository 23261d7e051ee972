"""Fréchet distance and mergeable Gaussian statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.generation.frechet import (
    GaussianStats,
    frechet_distance,
    frechet_from_stats,
    trace_sqrt_product,
)


def test_diagonal_closed_form() -> None:
    mu1, mu2 = np.array([1.0, 2.0, -1.0]), np.array([0.0, 0.5, 1.0])
    a, b = np.array([4.0, 1.0, 0.25]), np.array([1.0, 9.0, 0.25])
    value, info = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    # 1 + 2.25 + 4 + (2-1)^2 + (1-3)^2 + 0 = 12.25
    assert expected == pytest.approx(12.25)
    assert value == pytest.approx(expected, rel=1e-12)
    assert info["fd_sqrtm"] == pytest.approx(expected, rel=1e-9)
    assert info["discrepancy"] < 1e-9


def test_one_dimensional() -> None:
    value, _ = frechet_distance(np.array([3.0]), np.array([[4.0]]), np.array([1.0]), np.array([[1.0]]))
    assert value == pytest.approx((3 - 1) ** 2 + (2 - 1) ** 2)


def test_commuting_full_covariances() -> None:
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    a, b = rng.uniform(0.5, 3, 5), rng.uniform(0.5, 3, 5)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    value, info = frechet_distance(np.zeros(5), s1, np.zeros(5), s2)
    assert value == pytest.approx(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-9, abs=1e-12)
    assert info["fd_sqrtm"] == pytest.approx(value, rel=1e-8, abs=1e-10)


def test_general_matches_sqrtm_route() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((200, 6)), rng.standard_normal((150, 6)) * 2 + 1
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    value, info = frechet_distance(x.mean(0), s1, y.mean(0), s2)
    assert value > 0
    assert info["fd_sqrtm"] == pytest.approx(value, rel=1e-9)
    tr = trace_sqrt_product(s1, s2)
    assert tr == pytest.approx(np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real)), rel=1e-9)


def test_identical_is_zero_even_rank_deficient() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 20))  # n < dim: singular covariance
    s = np.cov(x, rowvar=False)
    value, _ = frechet_distance(x.mean(0), s, x.mean(0), s)
    assert value >= -1e-9
    assert abs(value) < 1e-8


def test_cross_check_can_be_skipped() -> None:
    value, info = frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2), cross_check=False)
    assert value == pytest.approx(2.0)
    assert info["cross_checked"] is False and np.isnan(info["fd_sqrtm"])


@pytest.mark.parametrize(
    "args",
    [
        (np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)),
        (np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)),
        (np.array([np.nan, 0]), np.eye(2), np.zeros(2), np.eye(2)),
    ],
)
def test_bad_inputs(args: tuple) -> None:
    with pytest.raises(ValueError):
        frechet_distance(*args)


@settings(max_examples=40, deadline=None)
@given(
    n1=st.integers(0, 12), n2=st.integers(0, 12), dim=st.integers(1, 5),
    seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0),
)
def test_merge_equals_concatenation(n1: int, n2: int, dim: int, seed: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n1, dim)) * scale + 1.0
    b = rng.standard_normal((n2, dim)) * scale - 2.0
    sa, sb = GaussianStats(dim), GaussianStats(dim)
    sa.update(a)
    sb.update(b)
    merged = sa.merge(sb)
    both = np.concatenate([a, b])
    assert merged.n == n1 + n2
    if merged.n >= 1:
        np.testing.assert_allclose(merged.mean(), both.mean(axis=0), rtol=1e-10, atol=1e-12 * scale)
    if merged.n >= 2:
        np.testing.assert_allclose(merged.cov(), np.atleast_2d(np.cov(both, rowvar=False)),
                                   rtol=1e-8, atol=1e-10 * scale**2)
    # merge is symmetric and row-by-row updates give the same statistics
    other = sb.merge(sa)
    one_by_one = GaussianStats(dim)
    for row in both:
        one_by_one.update(row)
    for s in (other, one_by_one):
        assert s.n == merged.n
        np.testing.assert_allclose(s.total, merged.total, rtol=1e-12, atol=1e-9 * scale)
        np.testing.assert_allclose(s.outer, merged.outer, rtol=1e-12, atol=1e-9 * scale**2)


def test_stats_fd_matches_numpy_route() -> None:
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((30, 3)) + 0.5
    a, b = GaussianStats(3), GaussianStats(3)
    a.update(x[:10])
    a.update(x[10:])
    b.update(y)
    value, _ = frechet_from_stats(a, b)
    ref, _ = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert value == pytest.approx(ref, rel=1e-10)


def test_small_sets_and_warnings() -> None:
    a, b = GaussianStats(4), GaussianStats(4)
    a.update(np.ones((1, 4)))
    b.update(np.zeros((3, 4)))
    value, info = frechet_from_stats(a, b)
    assert np.isnan(value) and "at least 2" in info["error"]
    assert np.isnan(a.cov()).all() and not np.isnan(a.mean()).any()
    assert np.isnan(GaussianStats(4).mean()).all()
    assert "rank-deficient" in (b.rank_warning("fd") or "")
    b.update(np.random.default_rng(0).standard_normal((2, 4)))
    assert b.rank_warning("fd") is None  # n = 5 > 4


def test_update_rejects_bad_rows() -> None:
    s = GaussianStats(3)
    with pytest.raises(ValueError):
        s.update(np.zeros((2, 4)))
    with pytest.raises(ValueError):
        s.update(np.array([[np.inf, 0, 0]]))
    with pytest.raises(ValueError):
        s.merge(GaussianStats(2))
    s.update(np.zeros((0, 3)))
    assert s.n == 0
