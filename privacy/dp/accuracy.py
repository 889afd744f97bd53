"""Epsilon <-> 95% half-width for each mechanism: pure functions that spend nothing.

A half-width ``h`` means: with probability at least 95% the released value lies within ``h`` of
the true (bounded, clamped) value. The statement is about the noise only; the bias from capping
rows per person or clamping values is not part of it (see ``privacy.dp.bounds``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from privacy.dp import opendp_core as dp

ALPHA = 0.05
"""1 - confidence level of every interval the hub states (95% intervals)."""


class AccuracyError(ValueError):
    """An epsilon or half-width that no release can honour."""


def check_epsilon(epsilon: float) -> float:
    """Return ``epsilon`` if it is a finite number > 0, else raise ``AccuracyError``."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise AccuracyError(f"epsilon must be a number, got {type(epsilon).__name__}")
    if math.isnan(epsilon) or math.isinf(epsilon) or epsilon <= 0:
        raise AccuracyError(f"epsilon must be finite and > 0, got {epsilon!r}")
    return float(epsilon)


def _check_half_width(half_width: float) -> float:
    if isinstance(half_width, bool) or not isinstance(half_width, int | float):
        raise AccuracyError(f"half-width must be a number, got {type(half_width).__name__}")
    if math.isnan(half_width) or math.isinf(half_width) or half_width <= 0:
        raise AccuracyError(
            f"half-width must be finite and > 0, got {half_width!r}: no finite epsilon gives "
            "an exact answer; ask for a positive half-width"
        )
    return float(half_width)


def _check_sensitivity(sensitivity: float) -> float:
    if not math.isfinite(sensitivity) or sensitivity <= 0:
        raise AccuracyError(f"sensitivity must be finite and > 0, got {sensitivity!r}")
    return float(sensitivity)


def _check_cap(epsilon: float, max_epsilon: float | None, half_width: float) -> float:
    if max_epsilon is not None and epsilon > max_epsilon:
        raise AccuracyError(
            f"a 95% half-width of {half_width:g} needs epsilon {epsilon:.4g}, above the cap of "
            f"{max_epsilon:g}; ask for at least the half-width that epsilon {max_epsilon:g} gives"
        )
    return epsilon


def privacy_map(meas: dp.Measurement | dp.Transformation, d_in: float) -> float:
    """OpenDP's privacy (or stability) map as a float (the stub is untyped)."""
    return float(meas.map(d_in))  # type: ignore[no-untyped-call]


# --- discrete Laplace (geometric) on integer counts -------------------------------------------


def discrete_laplace_half_width_for_scale(scale: float) -> int:
    """Smallest integer ``h`` with P(|X| <= h) >= 95% for X ~ discrete Laplace(scale).

    OpenDP's ``discrete_laplacian_scale_to_accuracy`` returns ``a`` with P(|X| >= a) = alpha;
    since X is an integer, P(|X| <= ceil(a) - 1) = 1 - P(|X| >= ceil(a)) = 1 - alpha.
    """
    from privacy.dp import opendp_core as dp

    a = float(dp.discrete_laplacian_scale_to_accuracy(scale=scale, alpha=ALPHA))
    return max(math.ceil(a) - 1, 0)


def discrete_laplace_half_width(epsilon: float, sensitivity: float) -> int:
    """95% half-width of a count released with the discrete Laplace at ``epsilon``."""
    epsilon = check_epsilon(epsilon)
    return discrete_laplace_half_width_for_scale(_check_sensitivity(sensitivity) / epsilon)


def discrete_laplace_epsilon(
    half_width: float, sensitivity: float, *, max_epsilon: float | None = None
) -> float:
    """Smallest epsilon whose discrete-Laplace 95% half-width is at most ``half_width``.

    Counts are integers, so a non-integer half-width is floored.
    """
    from privacy.dp import opendp_core as dp

    h = math.floor(_check_half_width(half_width))
    if h < 1:
        raise AccuracyError(
            f"half-width {half_width:g} is below 1: an integer count within 0 of the truth is an "
            "exact answer, which no epsilon can give; ask for a half-width of at least 1"
        )
    scale = float(dp.accuracy_to_discrete_laplacian_scale(accuracy=float(h + 1), alpha=ALPHA))
    eps = _check_sensitivity(sensitivity) / scale
    # OpenDP's float round-trip can land a hair on the wrong side; step until it holds.
    while discrete_laplace_half_width(eps, sensitivity) > h:
        eps = math.nextafter(eps, math.inf) * (1 + 1e-12)
    return _check_cap(eps, max_epsilon, half_width)


# --- continuous Laplace on float sums ----------------------------------------------------------


def laplace_half_width_for_scale(scale: float) -> float:
    """``h`` with P(|X| <= h) = 95% for X ~ Laplace(scale): h = scale * ln(1/alpha)."""
    from privacy.dp import opendp_core as dp

    return float(dp.laplacian_scale_to_accuracy(scale=scale, alpha=ALPHA))


def laplace_half_width(epsilon: float, sensitivity: float) -> float:
    """95% half-width of a sum released with the Laplace mechanism at ``epsilon``."""
    epsilon = check_epsilon(epsilon)
    return laplace_half_width_for_scale(_check_sensitivity(sensitivity) / epsilon)


def laplace_epsilon(
    half_width: float, sensitivity: float, *, max_epsilon: float | None = None
) -> float:
    """Epsilon whose Laplace 95% half-width equals ``half_width``."""
    from privacy.dp import opendp_core as dp

    h = _check_half_width(half_width)
    scale = float(dp.accuracy_to_laplacian_scale(accuracy=h, alpha=ALPHA))
    return _check_cap(_check_sensitivity(sensitivity) / scale, max_epsilon, half_width)


# --- mean = noisy sum / noisy count ------------------------------------------------------------


def mean_interval(
    noisy_sum: float,
    sum_half_width: float,
    noisy_count: float,
    count_half_width: float,
    lower: float,
    upper: float,
) -> tuple[float, float]:
    """A >= 95% interval for the mean from the two noisy parts.

    Each part is released with a 97.5% half-width (union bound: both hold with >= 95%). On that
    event the true sum S lies in [s-hs, s+hs] and the true count N in [n-hn, n+hn]; the mean S/N
    lies between the extreme ratios over that box, and always within the clamping bounds.
    """
    n_lo = noisy_count - count_half_width
    n_hi = noisy_count + count_half_width
    if n_lo <= 0:
        return (lower, upper)
    s_lo = noisy_sum - sum_half_width
    s_hi = noisy_sum + sum_half_width
    ratios = [s_lo / n_lo, s_lo / n_hi, s_hi / n_lo, s_hi / n_hi]
    return (max(lower, min(ratios)), min(upper, max(ratios)))


def mean_half_width(
    epsilon: float,
    rows_per_person: int,
    lower: float,
    upper: float,
    assumed_count: int,
    *,
    count_share: float = 0.5,
) -> float:
    """Planning half-width of a mean for a cell assumed to hold ``assumed_count`` records.

    Used only for previews: the released interval comes from the noisy values (``mean_interval``).
    """
    epsilon = check_epsilon(epsilon)
    if assumed_count < 1:
        raise AccuracyError("assumed_count must be >= 1 to plan the accuracy of a mean")
    eps_count = epsilon * count_share
    eps_sum = epsilon - eps_count
    hn = discrete_laplace_half_width_at(eps_count, rows_per_person, alpha=ALPHA / 2)
    hs = laplace_half_width_at(eps_sum, rows_per_person * max(abs(lower), abs(upper)), ALPHA / 2)
    centre = (lower + upper) / 2
    lo, hi = mean_interval(
        centre * assumed_count, hs, float(assumed_count), float(hn), lower, upper
    )
    return (hi - lo) / 2


def mean_epsilon(
    half_width: float,
    rows_per_person: int,
    lower: float,
    upper: float,
    assumed_count: int,
    *,
    max_epsilon: float | None = None,
) -> float:
    """Smallest epsilon (to 0.1% by bisection) whose planning half-width is <= ``half_width``."""
    h = _check_half_width(half_width)
    if h >= (upper - lower) / 2:
        return _check_cap(1e-6, max_epsilon, half_width)
    lo, hi = 1e-6, 1.0
    while mean_half_width(hi, rows_per_person, lower, upper, assumed_count) > h:
        hi *= 2
        if hi > 1e6:
            raise AccuracyError(f"half-width {half_width:g} is not reachable for this mean")
    while hi - lo > 1e-3 * hi:
        mid = (lo + hi) / 2
        if mean_half_width(mid, rows_per_person, lower, upper, assumed_count) > h:
            lo = mid
        else:
            hi = mid
    return _check_cap(hi, max_epsilon, half_width)


def discrete_laplace_half_width_at(epsilon: float, sensitivity: float, alpha: float) -> int:
    """Discrete-Laplace half-width at level ``alpha`` (the mean uses alpha/2 per part)."""
    from privacy.dp import opendp_core as dp

    a = float(dp.discrete_laplacian_scale_to_accuracy(scale=sensitivity / epsilon, alpha=alpha))
    return max(math.ceil(a) - 1, 0)


def laplace_half_width_at(epsilon: float, sensitivity: float, alpha: float) -> float:
    """Laplace half-width at level ``alpha``."""
    from privacy.dp import opendp_core as dp

    return float(dp.laplacian_scale_to_accuracy(scale=sensitivity / epsilon, alpha=alpha))


# --- exponential-mechanism quantile ------------------------------------------------------------


def quantile_rank_half_width(
    epsilon: float, rows_per_person: int, alpha: float, n_candidates: int
) -> float:
    """95% bound, in records, on how far the released candidate's rank is from the target rank.

    OpenDP 0.16 scores candidate c by u(c) = |(1-alpha)*#{x<c} - alpha*#{x>c}| (about the
    distance in records between c's rank and alpha*n), with sensitivity max(alpha, 1-alpha) per
    record, and its privacy map is eps = 2 * d_in * max(alpha, 1-alpha) / scale (checked in the
    tests). Selection noise of that scale picks a candidate whose score exceeds the best by t
    with probability <= exp(-t/scale), so by a union bound over C candidates
    P(gap >= scale * ln(C/0.05)) <= 0.05, with scale = 2 r max(alpha, 1-alpha) / eps.
    The bound is relative to the best candidate, so a coarse grid adds its own spacing.
    """
    epsilon = check_epsilon(epsilon)
    if n_candidates < 1:
        raise AccuracyError("a quantile needs at least one candidate")
    return quantile_scale(epsilon, rows_per_person, alpha) * math.log(n_candidates / ALPHA)


def quantile_scale(epsilon: float, rows_per_person: int, alpha: float) -> float:
    """OpenDP quantile noise scale giving ``epsilon`` at d_in = rows_per_person."""
    return 2 * rows_per_person * max(alpha, 1 - alpha) / epsilon


def quantile_epsilon(
    rank_half_width: float,
    rows_per_person: int,
    alpha: float,
    n_candidates: int,
    *,
    max_epsilon: float | None = None,
) -> float:
    """Epsilon giving a 95% rank half-width of ``rank_half_width`` records."""
    h = _check_half_width(rank_half_width)
    eps = 2 * rows_per_person * max(alpha, 1 - alpha) * math.log(n_candidates / ALPHA) / h
    return _check_cap(eps, max_epsilon, rank_half_width)
