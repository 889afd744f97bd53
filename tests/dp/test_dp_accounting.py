"""Accuracy round-trips, post-processing on noisy values only, bounds, budget, query hash."""

from __future__ import annotations

import inspect
import math
from datetime import date

import polars as pl
import pytest
from pydantic import ValidationError

from privacy.dp import accuracy, bounds, postprocess
from privacy.dp.budget import (
    Filter,
    Period,
    Query,
    QueryValueError,
    Spend,
    check_public_values,
    compose,
    decide,
    fits,
    period_bounds,
    period_label,
    query_hash,
)
from privacy.dp.mechanisms import ContributionBounds, release_count

# --- accuracy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("eps", [0.05, 0.3, 1.0, 2.5])
@pytest.mark.parametrize("sens", [1, 3])
def test_discrete_laplace_round_trip(eps: float, sens: int) -> None:
    h = accuracy.discrete_laplace_half_width(eps, sens)
    back = accuracy.discrete_laplace_epsilon(h, sens)
    assert back <= eps * (1 + 1e-9)  # never more budget than the original epsilon
    assert accuracy.discrete_laplace_half_width(back, sens) == h


@pytest.mark.parametrize("hw", [1, 2, 7, 40.5])
def test_discrete_laplace_epsilon_is_minimal(hw: float) -> None:
    eps = accuracy.discrete_laplace_epsilon(hw, 2)
    assert accuracy.discrete_laplace_half_width(eps, 2) <= hw
    assert accuracy.discrete_laplace_half_width(eps * 0.99, 2) > math.floor(hw) - 1e-9 or hw < 1


@pytest.mark.parametrize("eps", [0.1, 1.0, 3.0])
def test_laplace_and_quantile_round_trips(eps: float) -> None:
    h = accuracy.laplace_half_width(eps, 60.0)
    assert h == pytest.approx(60.0 / eps * math.log(20))
    assert accuracy.laplace_epsilon(h, 60.0) == pytest.approx(eps)
    rh = accuracy.quantile_rank_half_width(eps, 3, 0.5, 21)
    assert accuracy.quantile_epsilon(rh, 3, 0.5, 21) == pytest.approx(eps)


def test_mean_planning_round_trip() -> None:
    h = accuracy.mean_half_width(1.0, 2, 0.0, 20.0, 500)
    eps = accuracy.mean_epsilon(h, 2, 0.0, 20.0, 500)
    assert eps == pytest.approx(1.0, rel=0.01)


def test_preview_agrees_with_a_release() -> None:
    rel = release_count(
        pl.DataFrame({"k": ["a"], "value": [10]}),
        pl.DataFrame({"k": ["a"]}),
        unit="records",
        bounds=ContributionBounds(3),
        epsilon=0.7,
    )
    assert rel.table["half_width"][0] == accuracy.discrete_laplace_half_width(0.7, 3)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf])
def test_impossible_epsilons_and_half_widths(bad: float) -> None:
    with pytest.raises(accuracy.AccuracyError):
        accuracy.discrete_laplace_half_width(bad, 1)
    with pytest.raises(accuracy.AccuracyError):
        accuracy.discrete_laplace_epsilon(bad, 1)
    with pytest.raises(accuracy.AccuracyError):
        accuracy.laplace_epsilon(bad, 1.0)


def test_half_width_below_one_or_over_cap_is_impossible() -> None:
    with pytest.raises(accuracy.AccuracyError, match="at least 1"):
        accuracy.discrete_laplace_epsilon(0.5, 1)
    with pytest.raises(accuracy.AccuracyError, match="above the cap"):
        accuracy.discrete_laplace_epsilon(1, 5, max_epsilon=2.0)


# --- post-processing ------------------------------------------------------------------------------


def _count_release(true: list[int], eps: float) -> postprocess.Release:
    keys = pl.DataFrame({"k": [f"c{i}" for i in range(len(true))]})
    table = keys.with_columns(pl.Series("value", true))
    return release_count(table, keys, unit="records", bounds=ContributionBounds(1), epsilon=eps)


def test_postprocessing_reads_no_true_values() -> None:
    """The API takes the release only; the release holds no true-value column."""
    assert list(inspect.signature(postprocess.apply).parameters) == ["release", "spec"]
    rel = _count_release([0, 100], 1.0)
    assert set(rel.table.columns) == {"k", "value", "lower", "upper", "half_width"}


def test_suppression_is_decided_on_noisy_values() -> None:
    """A true 0 can show a value and a true value above the threshold can be suppressed."""
    spec = postprocess.PostProcessing(non_negative=True, integer=True, suppress_below=5)
    zero_shown = above_suppressed = False
    for _ in range(400):
        out = postprocess.apply(_count_release([0, 6], 0.3), spec).table
        zero_shown |= not out["suppressed"][0]
        above_suppressed |= bool(out["suppressed"][1])
        assert out.filter(pl.col("suppressed"))["value"].null_count() == out["suppressed"].sum()
        assert (out["value"].drop_nulls() >= 5).all()
    assert zero_shown and above_suppressed


def test_clamp_and_round_to_base_keep_coverage() -> None:
    spec = postprocess.PostProcessing(non_negative=True, integer=True, round_to_base=5)
    for _ in range(50):
        out = postprocess.apply(_count_release([0, 3, 12], 1.0), spec).table
        assert (out["value"] >= 0).all() and (out["value"] % 5 == 0).all()
        assert (out["lower"] % 5 == 0).all() and (out["upper"] % 5 == 0).all()
        assert (out["lower"] >= 0).all()
    with pytest.raises(postprocess.PostProcessError):
        postprocess.PostProcessing(round_to_base=0)


# --- bounds ---------------------------------------------------------------------------------------

# 9,000 persons with 1 row, ..., a few with up to 5 (the shape).
HIST = {1: 9000, 2: 3000, 3: 1500, 4: 600, 5: 400}


def test_bias_noise_and_best_fixed_bound() -> None:
    assert bounds.dropped_records(HIST, 3) == 600 * 1 + 400 * 2
    assert bounds.dropped_records(HIST, 5) == 0
    e = bounds.bias_and_noise(HIST, 3, epsilon=1.0, n_cells=10)
    assert e.bias_per_cell == 140.0
    q = math.exp(-1 / 3)
    assert e.noise_per_cell == pytest.approx(2 * q / (1 - q * q))
    best = bounds.best_fixed_bound(HIST, epsilon=1.0, n_cells=10)
    assert best.bound == 5 and best.total_per_cell <= e.total_per_cell


# --- budget ---------------------------------------------------------------------------------------


def test_basic_composition_and_refusal_says_what_is_left() -> None:
    spent = compose([Spend(0.1), Spend(0.2), Spend(0.3)])
    assert spent.epsilon == pytest.approx(0.6)
    cap = Spend(1.0)
    assert fits(spent, Spend(0.4), cap)  # float slack: 0.1+0.2+0.3+0.4 fits in 1.0
    d = decide(spent, Spend(0.5), cap, period="2025-Q1")
    assert not d.allowed
    assert "0.4 of 1 is left for 2025-Q1" in d.message and "needs epsilon 0.5" in d.message
    ok = decide(spent, Spend(0.25), cap)
    assert ok.allowed and ok.left_after.epsilon == pytest.approx(0.15)
    assert not fits(Spend(0.0), Spend(0.1, 1e-6), Spend(1.0, 0.0))  # delta counts too
    for bad in (math.nan, math.inf, -0.1):
        with pytest.raises(ValueError):
            Spend(bad)


def test_periods() -> None:
    d = date(2025, 11, 17)
    assert period_bounds(d, Period.MONTH) == (date(2025, 11, 1), date(2025, 12, 1))
    assert period_bounds(d, "quarter") == (date(2025, 10, 1), date(2026, 1, 1))
    assert period_bounds(d, "year") == (date(2025, 1, 1), date(2026, 1, 1))
    assert period_bounds(date(2025, 12, 31), "month") == (date(2025, 12, 1), date(2026, 1, 1))
    assert [period_label(d, p) for p in Period] == ["2025-11", "2025-Q4", "2025"]


def _q(**kw: object) -> Query:
    base: dict[str, object] = {
        "agreement_id": "ag-1",
        "dataset": "ae_istv_assaults",
        "measure": "count_persons",
        "group_by": ["month", "borough"],
        "epsilon": 1.0,
        "filters": [
            {"dimension": "sex", "values": ["male", "female"]},
            {"dimension": "age_band", "values": ["18-24", "15-17"]},
        ],
    }
    base.update(kw)
    return Query.model_validate(base)


def test_semantically_identical_queries_hash_the_same() -> None:
    a = _q()
    b = _q(
        group_by=["borough", "month"],
        filters=[
            {"dimension": "age_band", "values": ["15-17", "18-24", "15-17"]},
            {"dimension": "sex", "values": ["female", "male"]},
        ],
    )
    assert query_hash(a) == query_hash(b)
    assert len(query_hash(a)) == 64
    assert query_hash(a) != query_hash(_q(epsilon=0.5))
    assert query_hash(a) != query_hash(_q(group_by=["borough"]))


@pytest.mark.parametrize(
    "kw",
    [
        {"epsilon": 0.0},
        {"epsilon": -1.0},
        {"epsilon": math.nan},
        {"epsilon": math.inf},
        {"epsilon": None},  # neither epsilon nor target half-width
        {"target_half_width": 5.0},  # both
        {"measure": "sum"},  # no attribute
        {"measure": "quantile", "attribute": "age"},  # no quantile level
        {"attribute": "age"},  # a count takes no attribute
        {"group_by": ["borough", "borough"]},
        {
            "filters": [
                {"dimension": "sex", "values": ["male"]},
                {"dimension": "sex", "values": ["female"]},
            ]
        },
        {"filters": [{"dimension": "sex", "values": []}]},
        {"unknown": 1},
    ],
)
def test_bad_queries_are_refused(kw: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _q(**kw)


def test_values_outside_the_public_key_set_are_refused() -> None:
    public = {
        "borough": ["E09000001"],
        "month": ["2025-01"],
        "sex": ["male", "female"],
        "age_band": ["15-17", "18-24"],
    }
    check_public_values(_q(), public)
    with pytest.raises(QueryValueError, match="not in the public value set"):
        check_public_values(_q(filters=[{"dimension": "sex", "values": ["unknown"]}]), public)
    with pytest.raises(QueryValueError, match="no declared public value set"):
        check_public_values(_q(group_by=["postcode"]), public)
    assert Filter(dimension="sex", values=("b", "a", "b")).values == ("a", "b")
