"""KL (softmax / sigmoid) and Inception Score against hand-computed values and the reference
formulas written with torch's own ``kl_div`` (as audioldm_eval does)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators.generation.divergences import KL_EPS, inception_score, kl_sigmoid, kl_softmax


def test_kl_softmax_hand_computed() -> None:
    ref = np.array([[0.0, 0.0]])  # p = (1/2, 1/2)
    gen = np.array([[math.log(3.0), 0.0]])  # q = (3/4, 1/4)
    expected = 0.5 * math.log(0.5 / (0.75 + KL_EPS)) + 0.5 * math.log(0.5 / (0.25 + KL_EPS))
    assert kl_softmax(ref, gen)[0] == pytest.approx(expected, rel=1e-12)


def test_kl_sigmoid_hand_computed() -> None:
    ref = np.array([[0.0, math.log(3.0)]])  # s = (1/2, 3/4)
    gen = np.array([[math.log(3.0), 0.0]])  # t = (3/4, 1/2)
    expected = 0.5 * math.log(0.5 / (0.75 + KL_EPS)) + 0.75 * math.log(0.75 / (0.5 + KL_EPS))
    assert kl_sigmoid(ref, gen)[0] == pytest.approx(expected, rel=1e-12)


def test_identical_logits_give_exact_epsilon_value() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 527)) * 3
    p = torch.softmax(torch.from_numpy(x), dim=1).numpy()
    expected = -np.sum(p * np.log1p(KL_EPS / p), axis=1)  # sum p [log p - log(p + eps)]
    got = kl_softmax(x, x)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert np.all(got <= 0) and np.all(got >= -527 * KL_EPS)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(kl_sigmoid(x, x), -np.sum(s * np.log1p(KL_EPS / s), axis=1), rtol=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 6), c=st.integers(2, 30))
def test_matches_reference_kl_div_formulation(seed: int, n: int, c: int) -> None:
    rng = np.random.default_rng(seed)
    gen, ref = rng.standard_normal((n, c)) * 4, rng.standard_normal((n, c)) * 4
    g, r = torch.from_numpy(gen), torch.from_numpy(ref)
    # audioldm_eval metrics/kl.py: features_1 = generated, features_2 = target
    soft = torch.nn.functional.kl_div((g.softmax(1) + KL_EPS).log(), r.softmax(1), reduction="sum") / n
    sig = torch.nn.functional.kl_div((g.sigmoid() + KL_EPS).log(), r.sigmoid(), reduction="sum") / n
    assert kl_softmax(ref, gen).mean() == pytest.approx(float(soft), rel=1e-9, abs=1e-12)
    assert kl_sigmoid(ref, gen).mean() == pytest.approx(float(sig), rel=1e-9, abs=1e-12)
    assert np.all(kl_softmax(ref, gen) >= -c * KL_EPS)


def test_kl_bad_inputs() -> None:
    with pytest.raises(ValueError):
        kl_softmax(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError):
        kl_sigmoid(np.array([[np.nan, 0.0]]), np.zeros((1, 2)))
    with pytest.raises(ValueError):
        kl_softmax(np.zeros((1, 2, 3)), np.zeros((1, 2, 3)))


def _reference_is(logits: np.ndarray, splits: int, seed: int) -> tuple[float, float]:
    """audioldm_eval metrics/isc.py, written with torch as the reference does."""
    features = torch.from_numpy(logits)
    n = features.shape[0]
    features = features[np.random.RandomState(seed).permutation(n), :].double()
    p, log_p = features.softmax(dim=1), features.log_softmax(dim=1)
    scores = []
    for i in range(splits):
        pc, lpc = p[i * n // splits:(i + 1) * n // splits], log_p[i * n // splits:(i + 1) * n // splits]
        q = pc.mean(dim=0, keepdim=True)
        scores.append((pc * (lpc - q.log())).sum(dim=1).mean().exp().item())
    return float(np.mean(scores)), float(np.std(scores))


@pytest.mark.parametrize("n", [10, 37, 100])
def test_is_matches_reference(n: int) -> None:
    x = np.random.default_rng(n).standard_normal((n, 527)).astype(np.float32) * 5
    mean, std, used = inception_score(x)
    ref_mean, ref_std = _reference_is(x, 10, 2020)
    assert used == 10
    assert mean == pytest.approx(ref_mean, rel=1e-12)
    assert std == pytest.approx(ref_std, rel=1e-9, abs=1e-12)


def test_is_one_hot_uniform_coverage_equals_class_count() -> None:
    c, per = 8, 3
    labels = np.tile(np.arange(c), per * 10)  # every split of 24 rows covers each class 3 times
    logits = np.where(np.arange(c)[None, :] == labels[:, None], 1000.0, 0.0)
    mean, std, _ = inception_score(logits, splits=10, shuffle=False)
    assert mean == pytest.approx(c, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)
    # shuffled: each split scores exp(entropy of its class histogram)
    perm = np.random.RandomState(2020).permutation(len(labels))
    shuffled = labels[perm]
    expected = []
    for i in range(10):
        h = np.bincount(shuffled[i * 24:(i + 1) * 24], minlength=c) / 24
        h = h[h > 0]
        expected.append(math.exp(-np.sum(h * np.log(h))))
    mean, std, _ = inception_score(logits)
    assert mean == pytest.approx(np.mean(expected), rel=1e-12)
    assert std == pytest.approx(np.std(expected), rel=1e-9, abs=1e-12)


def test_is_identical_rows_is_one() -> None:
    x = np.tile(np.random.default_rng(1).standard_normal(527), (50, 1))
    mean, std, _ = inception_score(x)
    assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_is_hand_computed_single_split() -> None:
    logits = np.array([[1000.0, 0.0], [0.0, 0.0]])  # p1 = (1, 0), p2 = (1/2, 1/2)
    pbar = np.array([0.75, 0.25])
    kl1 = math.log(1 / pbar[0])
    kl2 = 0.5 * math.log(0.5 / pbar[0]) + 0.5 * math.log(0.5 / pbar[1])
    mean, std, used = inception_score(logits, splits=1)
    assert used == 1 and mean == pytest.approx(math.exp((kl1 + kl2) / 2), rel=1e-12) and std == 0


def test_is_fewer_rows_than_splits() -> None:
    x = np.random.default_rng(2).standard_normal((3, 5))
    mean, std, used = inception_score(x, splits=10)
    assert used == 3 and np.isfinite(mean)
    # each split is one row: IS of one row is exactly 1
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)
    m0, s0, u0 = inception_score(np.zeros((0, 5)))
    assert u0 == 0 and math.isnan(m0) and math.isnan(s0)
