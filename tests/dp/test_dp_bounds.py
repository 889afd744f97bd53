"""Choosing the rows-per-person bound from a released histogram (``privacy.dp.bounds``).

The released statistic is a histogram of persons by rows: each person is in exactly one bin,
so adding or removing a person moves one bin by 1 (l1 sensitivity 1) and discrete Laplace noise
at scale 1/epsilon makes it epsilon-DP; the empirical check below measures that. The bound is
post-processing of that release."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from privacy.dp import bounds
from privacy.dp.audit import epsilon_lower_bound

PERSONS_BY_ROWS = {1: 100_000, 2: 50_000, 3: 25_000}  # nobody has more than 3 rows


def test_the_histogram_is_noised_at_sensitivity_one_and_keeps_its_bins_raw() -> None:
    released = bounds.release_rows_histogram(PERSONS_BY_ROWS, epsilon=0.02, max_rows=10)
    assert sorted(released.bins) == list(range(1, 12))  # 1..10 and "more than 10"
    assert released.epsilon <= 0.02 + 1e-12
    assert released.scale == pytest.approx(1 / 0.02, rel=1e-3)
    assert any(v < 0 for v in released.bins.values()), "empty bins keep their negative noise"
    capped = bounds.release_rows_histogram({25: 7}, epsilon=1.0, max_rows=10)
    assert capped.bins[11] > 0  # persons above the cap are in the last bin


def test_a_count_takes_the_bound_where_dropped_rows_stop_outweighing_noise() -> None:
    """Over 5 cells at epsilon 1: bounds 1 and 2 drop 75,000 and 25,000 rows (15,000 and
    5,000 per cell); bound 3 drops none and has the least noise of those that drop nothing.
    A histogram at epsilon 0.02 (noise scale 50) cannot hide that, and the z-rule keeps the
    noise of empty bins from pushing the bound above 3."""
    picked = Counter(
        bounds.count_bound(
            bounds.release_rows_histogram(PERSONS_BY_ROWS, epsilon=0.02, max_rows=10),
            cells=5,
            epsilon=1.0,
        )
        for _ in range(200)
    )
    assert picked[3] >= 197, picked


def test_many_cells_make_dropping_a_few_rows_worth_it() -> None:
    """10 persons with 5 rows among 100,000: at bound 3 they lose 20 rows; spread over 1,000
    cells that is 0.02 per cell, far below the extra noise of bound 5, so 3 is taken; over one
    cell, 20 rows outweigh the noise and the bound covers them."""
    hist = {1: 99_990, 3: 0, 5: 10}
    exact = bounds.RowsHistogram({k: float(hist.get(k, 0)) for k in range(1, 12)}, 1e-9, 1, 10)
    assert bounds.count_bound(exact, cells=1_000, epsilon=1.0) == 1
    assert bounds.count_bound(exact, cells=1, epsilon=1.0) == 5


def test_the_quantile_bound_keeps_all_rows_of_most_persons() -> None:
    exact = bounds.RowsHistogram(
        {k: float(v) for k, v in {1: 50, 2: 30, 3: 15, 4: 4, 5: 1, 11: 0}.items()}, 1e-9, 1, 10
    )
    assert bounds.quantile_bound(exact, quantile=0.95) == 3
    assert bounds.quantile_bound(exact, quantile=0.99) == 4
    with pytest.raises(bounds.BoundError):
        bounds.quantile_bound(exact, quantile=1.0)


def test_bad_parameters_are_refused() -> None:
    released = bounds.release_rows_histogram(PERSONS_BY_ROWS, epsilon=0.5, max_rows=10)
    with pytest.raises(bounds.BoundError):
        bounds.count_bound(released, cells=0, epsilon=1.0)
    for epsilon in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            bounds.count_bound(released, cells=5, epsilon=epsilon)
        with pytest.raises(ValueError):
            bounds.release_rows_histogram(PERSONS_BY_ROWS, epsilon=epsilon, max_rows=10)
    with pytest.raises(bounds.BoundError):
        bounds.release_rows_histogram({0: 5}, epsilon=1.0, max_rows=10)


def test_neighbouring_populations_are_indistinguishable_beyond_the_declared_epsilon() -> None:
    """One person more with 2 rows: the released bin 2 is the only difference. Over 3,000
    releases each, the epsilon lower bound the outputs support stays below the declared 1.0."""
    epsilon = 1.0
    without = [
        bounds.release_rows_histogram({1: 20, 2: 10}, epsilon=epsilon, max_rows=3).bins[2]
        for _ in range(3_000)
    ]
    with_one = [
        bounds.release_rows_histogram({1: 20, 2: 11}, epsilon=epsilon, max_rows=3).bins[2]
        for _ in range(3_000)
    ]
    lower = epsilon_lower_bound(
        without, with_one, [float(t) for t in range(6, 16)], confidence=0.999
    )
    assert 0.3 < lower <= epsilon  # the audit has power, and finds no more than declared
