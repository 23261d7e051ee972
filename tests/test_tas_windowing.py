"""TAS windowing: cover any length with overlapping, cross-faded windows; L + R = m."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.base import compose_binaural
from baselines.tas.windowing import (
    fade_weights,
    merge_windows,
    plan_windows,
    split_windows,
    window_gains,
    window_starts,
)
from tas_bench.runtime.errors import TasBenchError


def test_window_starts_hand_cases() -> None:
    assert window_starts(50, 100, 20) == [0]
    assert window_starts(100, 100, 20) == [0]
    assert window_starts(260, 100, 20) == [0, 80, 160]
    assert window_starts(261, 100, 20) == [0, 80, 160, 161]  # the last one aligned to the end
    with pytest.raises(TasBenchError, match="overlap"):
        window_starts(10, 100, 100)


def test_fades_sum_to_one_where_windows_meet() -> None:
    starts = window_starts(260, 100, 20)
    w = fade_weights(starts, 100, 20, 260)
    total = np.zeros(260)
    for s, wk in zip(starts, w):
        total[s:s + 100] += wk
    np.testing.assert_allclose(total, 1.0, atol=1e-12)
    assert w[0][0] == 1.0 and w[-1][-1] == 1.0  # no fade at the clip's edges
    assert 0 < w[1][0] < 0.01 and w[0][-1] < 0.01


def test_merge_gives_back_a_signal_cut_into_windows() -> None:
    rng = np.random.default_rng(0)
    for n in (37, 100, 261, 1000):
        x = rng.standard_normal(n).astype(np.float32)
        starts, wins = split_windows(x, 100, 30)
        assert wins.shape == (len(starts), 100)
        if n < 100:  # padded for the model, trimmed back
            assert np.all(wins[0, n:] == 0)
        y = merge_windows(wins, starts, 100, 30, n)
        assert y.shape == (n,)
        np.testing.assert_allclose(y, x, atol=1e-6)


def test_cross_fade_blends_disagreeing_windows() -> None:
    starts = window_starts(180, 100, 20)  # [0, 80]
    wins = np.stack([np.ones(100), -np.ones(100)])
    y = merge_windows(wins, starts, 100, 20, 180)
    assert np.all(y[:80] == 1) and np.all(y[100:] == -1)
    mid = y[80:100]
    assert np.all(np.diff(mid) < 0) and abs(mid[9] + mid[10]) < 1e-6  # a smooth, symmetric fade


def test_window_gains() -> None:
    wins = np.stack([np.full(10, 0.5), np.zeros(10)])
    np.testing.assert_allclose(window_gains(wins, 0.1), [0.2, 1.0])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(n=st.integers(1, 900), width=st.integers(16, 300), frac=st.floats(0.0, 0.5),
       seed=st.integers(0, 1000))
def test_any_length_round_trip_and_l_plus_r_equals_m(n: int, width: int, frac: float, seed: int) -> None:
    overlap = min(int(frac * width), width - 1)
    rng = np.random.default_rng(seed)
    m = rng.standard_normal(n).astype(np.float32)
    d = rng.standard_normal(n).astype(np.float32)
    items, mono_w, starts = plan_windows([m], width, overlap, 0.1)
    assert len(items) == len(starts[0]) == mono_w.shape[0]
    # the model sees gain-normalised windows; undo the gain per window, as the pipeline does
    _, dw = split_windows(d, width, overlap)
    gains = np.array([w.gain for w in items])
    dd = merge_windows((dw * gains[:, None]) / gains[:, None], starts[0], width, overlap, n)
    np.testing.assert_allclose(dd, d, atol=1e-5)
    y = compose_binaural(m, dd)
    assert y.shape == (2, n)
    np.testing.assert_allclose(y[0] + y[1], m, atol=1e-6)
