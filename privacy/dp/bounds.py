"""Choose the rows-per-person bound from the data with a small, accounted part of the budget.

Input: a histogram ``{k: number of persons with k rows}`` for the query's population, with k
capped at a public maximum (persons with more rows are counted in the last bin). Each person is
in exactly one bin, so adding or removing a person moves one bin by 1 (l1 sensitivity 1):
``release_rows_histogram`` releases it with discrete Laplace noise, and ``count_bound`` and
``quantile_bound`` choose a bound from that release (post-processing).

``dropped_records``, ``bias_and_noise`` and ``best_fixed_bound`` read true data: they are for
benchmarks and reports computed inside the hub, and are never released.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from privacy.dp import accuracy, mechanisms


class BoundError(ValueError):
    """A histogram or parameter the bound chooser cannot use."""


def _check_histogram(histogram: Mapping[int, int], max_rows: int) -> dict[int, int]:
    if max_rows < 1:
        raise BoundError("max_rows must be >= 1")
    out: dict[int, int] = {}
    for k, n in histogram.items():
        if int(k) < 1 or int(n) < 0:
            raise BoundError("histogram keys must be >= 1 rows and counts >= 0 persons")
        kk = min(int(k), max_rows)
        out[kk] = out.get(kk, 0) + int(n)
    return out


@dataclass(frozen=True)
class RowsHistogram:
    """A released histogram of persons by rows: ``bins[k]`` for k = 1..max_rows, and
    ``bins[max_rows + 1]`` for persons with more. Discrete Laplace noise at l1 sensitivity 1 (a
    person is in exactly one bin, so adding or removing a person moves one bin by 1). The
    noisy counts are kept raw (not clamped one by one, which would bias every sum upwards)."""

    bins: dict[int, float]
    scale: float
    epsilon: float
    max_rows: int


def release_rows_histogram(
    histogram: Mapping[int, int], *, epsilon: float, max_rows: int
) -> RowsHistogram:
    """Release ``{k: persons with k rows}`` (k above ``max_rows`` counted in the last bin)."""
    epsilon = accuracy.check_epsilon(epsilon)
    hist = _check_histogram(histogram, max_rows + 1)
    ks = list(range(1, max_rows + 2))
    noisy, scale, spent = mechanisms.noisy_counts([hist.get(k, 0) for k in ks], epsilon, 1)
    return RowsHistogram(dict(zip(ks, map(float, noisy), strict=True)), scale, spent, max_rows)


def count_bound(released: RowsHistogram, *, cells: int, epsilon: float, z: float = 3.0) -> int:
    """The bound for a count over ``cells`` cells at ``epsilon``, from a released histogram:
    the least estimated error per cell, bias (rows the bound drops, an upper bound on the
    person-cells it drops, spread over the cells) plus the mean absolute noise at that bound.

    The bias estimate is noisy; a larger bound is taken only where the estimate says it is
    better by more than ``z`` standard deviations of that noise, so that noise in empty bins
    does not push the bound (and every cell's noise) up. Post-processing of a DP release."""
    epsilon = accuracy.check_epsilon(epsilon)
    if cells < 1:
        raise BoundError("cells must be >= 1")
    bins, n = released.bins, released.max_rows

    def dropped(k: int) -> float:
        return sum((m - k) * v for m, v in bins.items() if m > k)

    def spread(k: int) -> float:  # sd of dropped(k) / cells: Var(discrete Laplace) <= 2 scale²
        return released.scale * math.sqrt(2 * sum((m - k) ** 2 for m in bins if m > k)) / cells

    def estimate(k: int) -> float:
        return max(dropped(k), 0.0) / cells + discrete_laplace_mean_abs_error(k / epsilon)

    least = min(range(1, n + 1), key=estimate)
    return next(k for k in range(1, least + 1) if estimate(k) - z * spread(k) <= estimate(least))


def quantile_bound(released: RowsHistogram, *, quantile: float = 0.95) -> int:
    """The smallest bound that keeps all rows of at least ``quantile`` of the persons, by the
    released histogram (negative noisy bins count as 0). Post-processing of a DP release."""
    if not 0 < quantile < 1:
        raise BoundError("quantile must be strictly between 0 and 1")
    counts = {k: max(v, 0.0) for k, v in released.bins.items()}
    total = sum(counts.values())
    kept = 0.0
    for k in range(1, released.max_rows + 1):
        kept += counts.get(k, 0.0)
        if kept >= quantile * total:
            return k
    return released.max_rows


def dropped_records(histogram: Mapping[int, int], bound: int) -> int:
    """Records lost by keeping at most ``bound`` rows per person: sum over k > b of (k-b)*n_k.

    With a capped histogram this undercounts for persons above the cap.
    """
    if bound < 1:
        raise BoundError("bound must be >= 1")
    return sum((k - bound) * n for k, n in histogram.items() if k > bound)


def discrete_laplace_mean_abs_error(scale: float) -> float:
    """E|X| for X ~ discrete Laplace(scale): 2q / (1 - q^2) with q = exp(-1/scale)."""
    q = math.exp(-1.0 / scale)
    return 2 * q / (1 - q * q)


@dataclass(frozen=True)
class ErrorEstimate:
    """Expected absolute error per cell of a count of records at a given bound."""

    bound: int
    dropped_records: int
    bias_per_cell: float
    noise_per_cell: float

    @property
    def total_per_cell(self) -> float:
        return self.bias_per_cell + self.noise_per_cell


def bias_and_noise(
    histogram: Mapping[int, int], bound: int, *, epsilon: float, n_cells: int
) -> ErrorEstimate:
    """Bias (dropped records averaged over ``n_cells``) plus the mean absolute noise of a
    count of records at l1 sensitivity ``bound`` and ``epsilon``."""
    epsilon = accuracy.check_epsilon(epsilon)
    if n_cells < 1:
        raise BoundError("n_cells must be >= 1")
    dropped = dropped_records(histogram, bound)
    return ErrorEstimate(
        bound, dropped, dropped / n_cells, discrete_laplace_mean_abs_error(bound / epsilon)
    )


def best_fixed_bound(
    histogram: Mapping[int, int], *, epsilon: float, n_cells: int, max_rows: int = 20
) -> ErrorEstimate:
    """The bound a person with hindsight would pick: least bias + noise per cell."""
    return min(
        (
            bias_and_noise(histogram, b, epsilon=epsilon, n_cells=n_cells)
            for b in range(1, max_rows + 1)
        ),
        key=lambda e: e.total_per_cell,
    )
