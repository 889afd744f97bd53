"""Statistics for the empirical privacy audit and the coverage test (pure, no true data).

``epsilon_lower_bound`` turns two samples of a release on neighbouring tables into a lower
bound on the epsilon they support: for an event S, e^eps >= P_A(S) / P_B(S); with Clopper-
Pearson bounds (P_A at its lower and P_B at its upper confidence limit) the ratio is a
conservative estimate, valid at the stated confidence after a Bonferroni correction over events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(Bin(n, p) <= k), summed in log space."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    i = np.arange(k + 1, dtype=np.float64)
    terms = _log_choose(n)[: k + 1] + i * math.log(p) + (n - i) * math.log1p(-p)
    m = float(terms.max())
    return float(min(1.0, math.exp(m) * float(np.exp(terms - m).sum())))


@lru_cache(maxsize=16)
def _log_choose(n: int) -> npt.NDArray[np.float64]:
    i = np.arange(n + 1, dtype=np.float64)
    lg = np.vectorize(math.lgamma)
    return np.asarray(lg(n + 1.0) - lg(i + 1) - lg(n - i + 1), dtype=np.float64)


def clopper_pearson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Clopper-Pearson interval for a binomial proportion (bisection)."""
    a = 1 - confidence

    def solve(f_target: float, kk: int) -> float:
        # p with P(X <= kk; p) = f_target; the cdf decreases in p.
        lo, hi = 0.0, 1.0
        for _ in range(50):
            mid = (lo + hi) / 2
            if _binom_cdf(kk, n, mid) > f_target:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(1 - a / 2, k - 1)
    upper = 1.0 if k == n else solve(a / 2, k)
    return lower, upper


def epsilon_lower_bound(
    sample_a: Sequence[float],
    sample_b: Sequence[float],
    thresholds: Sequence[float],
    *,
    confidence: float = 0.95,
) -> float:
    """Largest ln(P_A_low(S) / P_B_high(S)) over events S = {x >= t} and {x <= t}, both ways."""
    per_event = 1 - (1 - confidence) / (4 * max(len(thresholds), 1))
    best = 0.0
    for t in thresholds:
        for first, second in ((sample_a, sample_b), (sample_b, sample_a)):
            for side in (1, -1):
                ka = sum(1 for x in first if side * (x - t) >= 0)
                kb = sum(1 for x in second if side * (x - t) >= 0)
                pa_low, _ = clopper_pearson(ka, len(first), per_event)
                _, pb_high = clopper_pearson(kb, len(second), per_event)
                if pa_low > 0 and pb_high > 0:
                    best = max(best, math.log(pa_low / pb_high))
    return best
