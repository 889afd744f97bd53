"""Noise a contingency table with OpenDP, calibrated directly at a known scale.

Input: a polars DataFrame holding every cell of the declared (public) key set and its true
value, computed elsewhere (in SQL) from rows already bounded per person. Cells missing from the
table are filled with 0 before noising, because whether a cell is present must not depend on
the data. Output: a ``Release`` whose table holds only noisy values and intervals, never the
true ones, plus the metadata that states the privacy guarantee.

Sensitivity arguments (unit of privacy: one person in the linkage domain; neighbouring tables
differ by all rows of one person):

* count of distinct persons, each person in at most ``g`` cells: removing a person lowers at
  most ``g`` cells by 1 each, so the l1 distance between the count vectors is <= g.
* count of records, at most ``r`` rows per person: removing a person removes <= r rows, which
  may fall in different cells; each row lowers exactly one cell by 1, so l1 <= r.
* sum of a value clamped to [L, U], at most ``r`` rows per person: each removed row changes one
  cell's sum by at most max(|L|, |U|), so l1 <= r * max(|L|, |U|).
* mean: noisy sum / noisy count of records (budget split, basic composition).
* quantile per cell: OpenDP's exponential-mechanism quantile with symmetric distance; a person
  with k_c rows in cell c moves that cell's vector by k_c, and OpenDP's privacy map is linear
  in d_in, so the total loss is sum_c map(k_c) = map(sum_c k_c) <= map(r).
One vector-valued OpenDP measurement noises all cells of a count or sum at once with the l1
sensitivity above as ``d_in``, so OpenDP carries the privacy analysis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from privacy.dp import accuracy

if TYPE_CHECKING:
    from privacy.dp import opendp_core as dp

VALUE = "value"
"""Default name of the true-value column of the input table."""

CountUnit = Literal["records", "persons"]


class ReleaseError(ValueError):
    """The inputs cannot be released as asked (bad bounds, key set mismatch, bad epsilon)."""


@dataclass(frozen=True)
class ContributionBounds:
    """How much one person may contribute to one query (enforced in SQL before noising)."""

    max_rows_per_person: int
    max_groups_per_person: int | None = None

    def __post_init__(self) -> None:
        if self.max_rows_per_person < 1:
            raise ReleaseError("max_rows_per_person must be >= 1")
        if self.max_groups_per_person is not None and self.max_groups_per_person < 1:
            raise ReleaseError("max_groups_per_person must be >= 1")


@dataclass(frozen=True)
class Clamp:
    """Public clamping bounds of a numeric attribute, declared by the agreement."""

    lower: float
    upper: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lower) and math.isfinite(self.upper)):
            raise ReleaseError("clamping bounds must be finite")
        if self.lower > self.upper:
            raise ReleaseError(f"clamping lower {self.lower} is above upper {self.upper}")

    @property
    def magnitude(self) -> float:
        return max(abs(self.lower), abs(self.upper))


@dataclass(frozen=True)
class ReleaseMetadata:
    """What a release promises: the guarantee, the mechanism and how accuracy is stated."""

    measure: str
    epsilon: float
    delta: float
    mechanism: str
    scale: float | tuple[float, ...]
    sensitivity: float | tuple[float, ...]
    unit_of_privacy: str
    contribution_bounds: ContributionBounds
    clamp: Clamp | None
    confidence: float
    interval: str
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Release:
    """Noisy table (key columns, ``value``, ``lower``, ``upper``, ``half_width``) + metadata."""

    table: pl.DataFrame
    meta: ReleaseMetadata


UNIT = "one person in the linkage domain"


def align_to_keyset(
    table: pl.DataFrame,
    keyset: pl.DataFrame,
    value_column: str = VALUE,
    fill: float | int = 0,
) -> pl.DataFrame:
    """Return one row per key of ``keyset`` (in its order) with the table's value, 0 if absent.

    Raises ``ReleaseError`` if the table has keys outside the public key set (the SQL should have
    filtered them) or duplicate keys; the message names columns and counts, never values.
    """
    keys = keyset.columns
    if not keys:
        raise ReleaseError("the key set needs at least one column (use a one-row frame for totals)")
    missing = [c for c in [*keys, value_column] if c not in table.columns]
    if missing:
        raise ReleaseError(f"table lacks columns {missing}")
    if keyset.select(keys).is_duplicated().any():
        raise ReleaseError("the public key set has duplicate keys")
    if table.select(keys).is_duplicated().any():
        raise ReleaseError("the table has more than one row for some key; aggregate it first")
    table = table.select([*keys, value_column])
    keyset = keyset.with_columns(
        [pl.col(c).cast(table.schema[c]) for c in keys if keyset.schema[c] != table.schema[c]]
    )
    outside = table.join(keyset, on=keys, how="anti", nulls_equal=True).height
    if outside:
        raise ReleaseError(
            f"{outside} table row(s) have a value outside the public key set of columns {keys}; "
            "filter the query to the declared values"
        )
    out = keyset.join(table, on=keys, how="left", maintain_order="left", nulls_equal=True)
    return out.with_columns(pl.col(value_column).fill_null(fill))


Builder = Callable[[float], "dp.Measurement"]


def _calibrate(
    build: Builder, d_in: float | int, epsilon: float, scale: float | None = None
) -> tuple[dp.Measurement, float, float]:
    """Build at ``scale`` (default d_in/epsilon); nudge it up until OpenDP's map <= epsilon."""
    scale = float(d_in) / epsilon if scale is None else scale
    meas = build(scale)
    for _ in range(64):
        spent = accuracy.privacy_map(meas, d_in)
        if spent <= epsilon:
            return meas, scale, spent
        scale = math.nextafter(scale, math.inf) * (1 + 1e-12)
        meas = build(scale)
    raise ReleaseError("could not calibrate the noise scale to the requested epsilon")


def _int_laplace(scale: float) -> dp.Measurement:
    """Discrete Laplace (OpenDP samples integer Laplace noise exactly) on a vector of i64."""
    from privacy.dp import opendp_core as dp

    return dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=dp.i64)), dp.l1_distance(T=dp.i64), scale=scale
    )


def _float_laplace(scale: float) -> dp.Measurement:
    from privacy.dp import opendp_core as dp

    return dp.m.make_laplace(
        dp.vector_domain(dp.atom_domain(T=dp.f64, nan=False)),
        dp.l1_distance(T=dp.f64),
        scale=scale,
    )


def count_sensitivity(unit: CountUnit, bounds: ContributionBounds) -> int:
    """l1 sensitivity of a count vector (see module docstring for the argument)."""
    if unit == "records":
        return bounds.max_rows_per_person
    if bounds.max_groups_per_person is None:
        raise ReleaseError("a count of persons needs max_groups_per_person")
    return bounds.max_groups_per_person


def sum_sensitivity(bounds: ContributionBounds, clamp: Clamp) -> float:
    """l1 sensitivity of a vector of cell sums of clamped values."""
    return bounds.max_rows_per_person * clamp.magnitude


def noisy_counts(
    true: Sequence[int], epsilon: float, sensitivity: int
) -> tuple[list[int], float, float]:
    """Discrete Laplace noise on each count, calibrated to l1 ``sensitivity`` at ``epsilon``:
    (noisy counts, scale, epsilon the measurement spends)."""
    meas, scale, spent = _calibrate(_int_laplace, sensitivity, epsilon)
    return [int(v) for v in meas([int(v) for v in true])], scale, spent


def _noisy_sums(
    true: Sequence[float], epsilon: float, sensitivity: float
) -> tuple[list[float], float, float]:
    meas, scale, spent = _calibrate(_float_laplace, sensitivity, epsilon)
    return [float(v) for v in meas([float(v) for v in true])], scale, spent


def release_count(
    table: pl.DataFrame,
    keyset: pl.DataFrame,
    *,
    unit: CountUnit,
    bounds: ContributionBounds,
    epsilon: float,
    value_column: str = VALUE,
) -> Release:
    """Count of records or distinct persons per cell, discrete Laplace (geometric) noise."""
    epsilon = _epsilon(epsilon)
    sens = count_sensitivity(unit, bounds)
    cells = align_to_keyset(table, keyset, value_column)
    true = cells[value_column].cast(pl.Int64).to_list()
    noisy, scale, spent = noisy_counts(true, epsilon, sens)
    h = accuracy.discrete_laplace_half_width_for_scale(scale)
    out = _table(keyset, noisy, [float(h)] * len(noisy))
    meta = ReleaseMetadata(
        measure=f"count_{unit}",
        epsilon=spent,
        delta=0.0,
        mechanism="discrete_laplace",
        scale=scale,
        sensitivity=float(sens),
        unit_of_privacy=UNIT,
        contribution_bounds=bounds,
        clamp=None,
        confidence=1 - accuracy.ALPHA,
        interval="value +/- half_width holds the true bounded count with probability >= 95%",
    )
    return Release(out, meta)


def release_sum(
    table: pl.DataFrame,
    keyset: pl.DataFrame,
    *,
    bounds: ContributionBounds,
    clamp: Clamp,
    epsilon: float,
    value_column: str = VALUE,
) -> Release:
    """Sum per cell of a clamped attribute, Laplace noise on the vector of sums."""
    epsilon = _epsilon(epsilon)
    sens = sum_sensitivity(bounds, clamp)
    if sens == 0:
        raise ReleaseError("clamping bounds [0, 0] make every sum 0; nothing to release")
    cells = align_to_keyset(table, keyset, value_column)
    true = cells[value_column].cast(pl.Float64).to_list()
    noisy, scale, spent = _noisy_sums(true, epsilon, sens)
    h = accuracy.laplace_half_width_for_scale(scale)
    meta = ReleaseMetadata(
        measure="sum",
        epsilon=spent,
        delta=0.0,
        mechanism="laplace",
        scale=scale,
        sensitivity=sens,
        unit_of_privacy=UNIT,
        contribution_bounds=bounds,
        clamp=clamp,
        confidence=1 - accuracy.ALPHA,
        interval="value +/- half_width holds the true clamped sum with probability 95%",
        notes=("a sum of values clamped to the bounds: biased if values lie outside them",),
    )
    return Release(_table(keyset, noisy, [h] * len(noisy)), meta)


def release_mean(
    table: pl.DataFrame,
    keyset: pl.DataFrame,
    *,
    bounds: ContributionBounds,
    clamp: Clamp,
    epsilon: float,
    sum_column: str = "sum",
    count_column: str = "count",
    count_share: float = 0.5,
) -> Release:
    """Mean per cell = noisy clamped sum / noisy record count.

    ``count_share`` of epsilon goes to the count (discrete Laplace, l1 = r), the rest to the sum
    (Laplace, l1 = r * max(|L|,|U|)); basic composition gives the total. The released value is
    the ratio clamped to [L, U] (or the midpoint when the noisy count is < 1); the interval is
    ``accuracy.mean_interval`` from both parts at 97.5% each, so it holds with >= 95%.
    """
    from privacy.dp import opendp_core as dp

    epsilon = _epsilon(epsilon)
    if not 0 < count_share < 1:
        raise ReleaseError("count_share must be strictly between 0 and 1")
    eps_count = epsilon * count_share
    eps_sum = epsilon - eps_count
    cells = align_to_keyset(table.select([*keyset.columns, sum_column]), keyset, sum_column)
    counts = align_to_keyset(table.select([*keyset.columns, count_column]), keyset, count_column)
    c_sens = bounds.max_rows_per_person
    s_sens = sum_sensitivity(bounds, clamp)
    if s_sens == 0:
        raise ReleaseError("clamping bounds [0, 0] make every mean 0; nothing to release")
    n_noisy, n_scale, n_spent = noisy_counts(
        counts[count_column].cast(pl.Int64).to_list(), eps_count, c_sens
    )
    s_noisy, s_scale, s_spent = _noisy_sums(
        cells[sum_column].cast(pl.Float64).to_list(), eps_sum, s_sens
    )
    hn = float(dp.discrete_laplacian_scale_to_accuracy(scale=n_scale, alpha=accuracy.ALPHA / 2))
    hn = float(max(math.ceil(hn) - 1, 0))
    hs = float(dp.laplacian_scale_to_accuracy(scale=s_scale, alpha=accuracy.ALPHA / 2))
    values: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    for s, n in zip(s_noisy, n_noisy, strict=True):
        mean = (clamp.lower + clamp.upper) / 2 if n < 1 else s / n
        values.append(min(max(mean, clamp.lower), clamp.upper))
        lo, hi = accuracy.mean_interval(s, hs, float(n), hn, clamp.lower, clamp.upper)
        lows.append(lo)
        highs.append(hi)
    out = keyset.with_columns(
        pl.Series(VALUE, values, dtype=pl.Float64),
        pl.Series("lower", lows, dtype=pl.Float64),
        pl.Series("upper", highs, dtype=pl.Float64),
    ).with_columns(((pl.col("upper") - pl.col("lower")) / 2).alias("half_width"))
    meta = ReleaseMetadata(
        measure="mean",
        epsilon=n_spent + s_spent,
        delta=0.0,
        mechanism="laplace(sum) / discrete_laplace(count)",
        scale=(s_scale, n_scale),
        sensitivity=(s_sens, float(c_sens)),
        unit_of_privacy=UNIT,
        contribution_bounds=bounds,
        clamp=clamp,
        confidence=1 - accuracy.ALPHA,
        interval="[lower, upper] holds the true clamped mean with probability >= 95% "
        "(each part at 97.5%, union bound); it is not symmetric about the value",
        notes=(f"epsilon split: count {eps_count:.6g}, sum {eps_sum:.6g}",),
    )
    return Release(out, meta)


def release_quantile(
    rows: pl.DataFrame,
    keyset: pl.DataFrame,
    *,
    alpha: float,
    candidates: Sequence[float],
    bounds: ContributionBounds,
    epsilon: float,
    value_column: str = VALUE,
) -> Release:
    """The ``alpha``-quantile per cell, chosen from the public ``candidates`` by OpenDP's
    exponential-mechanism quantile.

    ``rows``: one row per (bounded) record with the key columns and the value. Each cell's
    measurement is calibrated so that map(r) <= epsilon with r = max_rows_per_person; since the
    map is linear in d_in and a person's rows across cells sum to <= r, the whole release is
    epsilon-DP (parallel composition over the disjoint cells). Accuracy is stated in ranks:
    ``rank_half_width`` records; ``lower``/``upper`` are null.
    """
    from privacy.dp import opendp_core as dp

    epsilon = _epsilon(epsilon)
    if not 0 <= alpha <= 1 or math.isnan(alpha):
        raise ReleaseError(f"quantile alpha must be in [0, 1], got {alpha!r}")
    cands = sorted({float(c) for c in candidates})
    if not cands or not all(math.isfinite(c) for c in cands):
        raise ReleaseError("candidates must be a non-empty list of finite numbers")
    keys = keyset.columns
    # Key check on the distinct keys present (a count table's shape).
    present = rows.select(keys).unique().with_columns(pl.lit(0).alias("_n"))
    align_to_keyset(present, keyset, "_n")
    r = bounds.max_rows_per_person
    domain = dp.vector_domain(dp.atom_domain(T=dp.f64, nan=False))

    def build(scale: float) -> dp.Measurement:
        return dp.m.make_private_quantile(
            domain, dp.symmetric_distance(), dp.max_divergence(), cands, alpha, scale
        )

    meas, scale, spent = _calibrate(build, r, epsilon, accuracy.quantile_scale(epsilon, r, alpha))
    grouped = rows.group_by(keys).agg(pl.col(value_column).cast(pl.Float64))
    by_key = {tuple(row[:-1]): row[-1] for row in grouped.select([*keys, value_column]).iter_rows()}
    lo_c, hi_c = cands[0], cands[-1]
    values: list[float] = []
    for key in keyset.iter_rows():
        vals = np.clip(np.asarray(by_key.get(key, []), dtype=np.float64), lo_c, hi_c)
        values.append(float(meas(vals)))
    rank_h = accuracy.quantile_rank_half_width(spent, r, alpha, len(cands))
    out = keyset.with_columns(
        pl.Series(VALUE, values, dtype=pl.Float64),
        pl.lit(None, dtype=pl.Float64).alias("lower"),
        pl.lit(None, dtype=pl.Float64).alias("upper"),
        pl.lit(None, dtype=pl.Float64).alias("half_width"),
        pl.lit(rank_h, dtype=pl.Float64).alias("rank_half_width"),
    )
    meta = ReleaseMetadata(
        measure=f"quantile({alpha:g})",
        epsilon=spent,
        delta=0.0,
        mechanism="exponential_mechanism_quantile",
        scale=scale,
        sensitivity=r * max(alpha, 1 - alpha),
        unit_of_privacy=UNIT,
        contribution_bounds=bounds,
        clamp=Clamp(lo_c, hi_c),
        confidence=1 - accuracy.ALPHA,
        interval="with probability >= 95% the released candidate's rank in the cell is within "
        "rank_half_width records of the target rank alpha*n; no value interval is stated",
        notes=(
            "sensitivity is of the rank score |(1-alpha)#below - alpha#above| per person",
            "values are clamped to the candidate range; empty cells get a random candidate",
        ),
    )
    return Release(out, meta)


def _epsilon(epsilon: float) -> float:
    try:
        return accuracy.check_epsilon(epsilon)
    except accuracy.AccuracyError as exc:
        raise ReleaseError(str(exc)) from exc


def _table(keyset: pl.DataFrame, noisy: Sequence[float], half: Sequence[float]) -> pl.DataFrame:
    return (
        keyset.with_columns(
            pl.Series(VALUE, list(noisy)),
            pl.Series("half_width", list(half), dtype=pl.Float64),
        )
        .with_columns(
            (pl.col(VALUE) - pl.col("half_width")).cast(pl.Float64).alias("lower"),
            (pl.col(VALUE) + pl.col("half_width")).cast(pl.Float64).alias("upper"),
        )
        .select([*keyset.columns, VALUE, "lower", "upper", "half_width"])
    )
