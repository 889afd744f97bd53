"""Pure budget accounting and the canonical form of a query.

The hub keeps spends in its database (one row per release, written in the same transaction
that checks the cap) and uses these functions to decide. Composition is basic (sequential):
epsilons add, deltas add. A budget belongs to (recipient organisation, agreement, period).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

TOLERANCE = 1e-9
"""Float slack when comparing a composed epsilon with a cap (0.1 + 0.2 must fit in 0.3)."""

MIN_EPSILON = 1e-3
"""The least epsilon a release may use. Below it the noise swamps any count the hub holds
(a count's 95% half-width at 0.001 is ~3,000 per person-row), and epsilons near the float
precision of a spent budget (1e-15 added to 8.0) would not change the total at all: releases
that are paid for but never counted."""

MAX_HALF_WIDTH = 1e9
"""The widest 95% half-width a query may ask for: any wider asks for an epsilon below
:data:`MIN_EPSILON`, and floats this large lose the precision of the rounding rules."""


class BudgetError(ValueError):
    """Invalid spend or cap."""


@dataclass(frozen=True)
class Spend:
    """Privacy loss of one release (or a total): epsilon and delta (0 for pure DP)."""

    epsilon: float
    delta: float = 0.0

    def __post_init__(self) -> None:
        for name, v in (("epsilon", self.epsilon), ("delta", self.delta)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise BudgetError(f"{name} must be a finite number, got {v!r}")
            if v < 0:
                raise BudgetError(f"{name} must be >= 0, got {v!r}")
        if self.delta >= 1:
            raise BudgetError("delta must be < 1")


ZERO = Spend(0.0, 0.0)


def compose(spends: Iterable[Spend]) -> Spend:
    """Basic composition: the total privacy loss of releases on the same data."""
    items = list(spends)
    return Spend(
        math.fsum(s.epsilon for s in items), min(math.fsum(s.delta for s in items), 0.999999)
    )


def remaining(spent: Spend, cap: Spend) -> Spend:
    """What is left of ``cap`` after ``spent`` (never negative)."""
    return Spend(max(cap.epsilon - spent.epsilon, 0.0), max(cap.delta - spent.delta, 0.0))


def fits(spent: Spend, request: Spend, cap: Spend) -> bool:
    """True if ``request`` on top of ``spent`` stays within ``cap`` (epsilon and delta)."""
    total = compose([spent, request])
    return total.epsilon <= cap.epsilon + TOLERANCE and total.delta <= cap.delta + TOLERANCE


@dataclass(frozen=True)
class BudgetDecision:
    allowed: bool
    spent: Spend
    request: Spend
    cap: Spend
    left_before: Spend
    left_after: Spend
    message: str


def decide(
    spent: Spend, request: Spend, cap: Spend, *, period: str = "this period"
) -> BudgetDecision:
    """``fits`` with an explanation a 4xx response can carry as is."""
    left = remaining(spent, cap)
    ok = fits(spent, request, cap)
    if ok:
        after = remaining(compose([spent, request]), cap)
        msg = (
            f"allowed: spends epsilon {request.epsilon:g}; {after.epsilon:g} of {cap.epsilon:g} "
            f"left for {period}"
        )
    else:
        after = left
        msg = (
            f"refused: the query needs epsilon {request.epsilon:g}"
            + (f" and delta {request.delta:g}" if request.delta else "")
            + f" but only epsilon {left.epsilon:g}"
            + (f" and delta {left.delta:g}" if cap.delta else "")
            + f" of {cap.epsilon:g} is left for {period} ({spent.epsilon:g} spent); "
            "ask for a smaller epsilon (a wider half-width) or wait for the next period"
        )
    return BudgetDecision(ok, spent, request, cap, left, after, msg)


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


def period_bounds(day: date, period: Period | str) -> tuple[date, date]:
    """[start, end) of the budget period containing ``day``."""
    p = Period(period)
    if p is Period.MONTH:
        start = date(day.year, day.month, 1)
    elif p is Period.QUARTER:
        start = date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    else:
        start = date(day.year, 1, 1)
    months = {Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}[p]
    m = start.month - 1 + months
    end = date(start.year + m // 12, m % 12 + 1, 1)
    return start, end


def period_label(day: date, period: Period | str) -> str:
    """Stable label of a period: ``2025-03``, ``2025-Q1``, ``2025``."""
    p = Period(period)
    if p is Period.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    if p is Period.QUARTER:
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    return f"{day.year:04d}"


# --- the query --------------------------------------------------------------------------------

Measure = Literal["count_records", "count_persons", "sum", "mean", "quantile"]
_NAME = r"^[a-z][a-z0-9_]{0,63}$"


class Filter(BaseModel):
    """Keep rows whose ``dimension`` is one of ``values`` (public key-set values)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    dimension: str = Field(pattern=_NAME)
    values: tuple[str, ...] = Field(min_length=1, max_length=1000)

    @field_validator("values")
    @classmethod
    def _sorted(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(v)))


class LinkageCondition(BaseModel):
    """Persons who also (or never) appear in ``dataset``, optionally within a window of days
    before/after the query record's event date."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    dataset: str = Field(pattern=_NAME)
    appears: bool = True
    days_before: int | None = Field(default=None, ge=0, le=36_600)
    days_after: int | None = Field(default=None, ge=0, le=36_600)
    filters: tuple[Filter, ...] = ()

    @field_validator("filters")
    @classmethod
    def _sort_filters(cls, v: tuple[Filter, ...]) -> tuple[Filter, ...]:
        return _sorted_filters(v)


def _sorted_filters(v: tuple[Filter, ...]) -> tuple[Filter, ...]:
    dims = [f.dimension for f in v]
    if len(set(dims)) != len(dims):
        raise ValueError("each dimension may be filtered once; list all its values in one filter")
    return tuple(sorted(v, key=lambda f: f.dimension))


# A number given as a number: not a string ("0.1") nor a boolean (true), which lax parsing
# would read as 0.1 and 1.
_Number = Annotated[float, Strict()]


class Query(BaseModel):
    """What an analyst asks for, as plain data. The hub checks it against the agreement."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    agreement_id: str = Field(min_length=1, max_length=200)
    dataset: str = Field(pattern=_NAME)
    measure: Measure
    attribute: str | None = Field(default=None, pattern=_NAME)
    quantile: _Number | None = Field(default=None, gt=0, lt=1)
    group_by: tuple[str, ...] = Field(default=(), max_length=8)
    filters: tuple[Filter, ...] = ()
    linkage: tuple[LinkageCondition, ...] = Field(default=(), max_length=8)
    epsilon: _Number | None = None
    target_half_width: _Number | None = None

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import re

        for d in v:
            if not re.fullmatch(_NAME, d):
                raise ValueError(f"group_by names must match {_NAME}")
        if len(set(v)) != len(v):
            raise ValueError("group_by lists a dimension twice")
        return tuple(sorted(v))

    @field_validator("filters")
    @classmethod
    def _filters(cls, v: tuple[Filter, ...]) -> tuple[Filter, ...]:
        return _sorted_filters(v)

    @field_validator("linkage")
    @classmethod
    def _linkage(cls, v: tuple[LinkageCondition, ...]) -> tuple[LinkageCondition, ...]:
        return tuple(sorted(v, key=lambda c: rfc8785.dumps(c.model_dump(mode="json"))))

    @field_validator("epsilon", "target_half_width")
    @classmethod
    def _positive_finite(cls, v: float | None) -> float | None:
        if v is not None and (math.isnan(v) or math.isinf(v) or v <= 0):
            raise ValueError("must be a finite number > 0 (not NaN, not infinite)")
        return v

    @field_validator("epsilon")
    @classmethod
    def _meaningful_epsilon(cls, v: float | None) -> float | None:
        if v is not None and v < MIN_EPSILON:
            raise ValueError(
                f"must be at least {MIN_EPSILON:g}: below that the noise swamps any count"
            )
        return v

    @field_validator("target_half_width")
    @classmethod
    def _meaningful_half_width(cls, v: float | None) -> float | None:
        if v is not None and v > MAX_HALF_WIDTH:
            raise ValueError(f"must be at most {MAX_HALF_WIDTH:g}")
        return v

    @model_validator(mode="after")
    def _shape(self) -> Query:
        if (self.epsilon is None) == (self.target_half_width is None):
            raise ValueError("give exactly one of epsilon or target_half_width")
        numeric = self.measure in ("sum", "mean", "quantile")
        if numeric and self.attribute is None:
            raise ValueError(f"measure {self.measure} needs an attribute")
        if not numeric and self.attribute is not None:
            raise ValueError(f"measure {self.measure} takes no attribute")
        if (self.measure == "quantile") != (self.quantile is not None):
            raise ValueError("quantile is required for, and only for, measure 'quantile'")
        return self


def canonical_query(query: Query) -> bytes:
    """RFC 8785 (JCS) bytes of the query with group-by, filters and values sorted."""
    return bytes(rfc8785.dumps(query.model_dump(mode="json")))


def query_hash(query: Query) -> str:
    """SHA-256 hex of the canonical form: the key of "same query again -> stored release"."""
    return hashlib.sha256(canonical_query(query)).hexdigest()


class QueryValueError(ValueError):
    """A filter or group-by that names something outside the public key set."""


def check_public_values(query: Query, public_values: Mapping[str, Sequence[str]]) -> None:
    """Every group-by dimension and filter value must be in the declared public key set.

    The message names the dimension and the offending values (they come from the analyst, not
    from the data).
    """
    for d in query.group_by:
        if d not in public_values:
            raise QueryValueError(f"dimension {d!r} has no declared public value set")
    for f in query.filters:
        if f.dimension not in public_values:
            raise QueryValueError(f"dimension {f.dimension!r} has no declared public value set")
        allowed = set(public_values[f.dimension])
        bad = [v for v in f.values if v not in allowed]
        if bad:
            raise QueryValueError(
                f"filter on {f.dimension!r}: {bad[:5]} not in the public value set"
            )
