"""Differentially-private queries: plan against the agreement, aggregate in SQL, noise with
``privacy.dp``, spend the budget atomically, store the release.

How a query runs (see docs/queries.md for the arguments):

1. ``plan`` checks the query against the agreement (dataset, measure, attribute and its
   clamping bounds, dimensions and their public value sets, linkage datasets, epsilon and the
   per-query cap) and builds the public key set. Nothing here reads data.
2. ``k`` (rows per person) is chosen from a DP histogram of the query's *population* (its
   dataset, filters, linkage conditions; not its group-by or measure): persons by their highest
   rank, discrete Laplace at l1 sensitivity 1 (a person is in one bin), ``histogram_epsilon``
   = ``BOUND_SHARE`` of the per-query cap. It is released once per population, live uploads and
   budget period, stored like any release and paid by the first query that needs it; later
   queries on the population choose their bound from it and pay only for their own release.
   Counts at a given epsilon take the k with the least estimated bias + noise per cell
   (``privacy.dp.bounds.count_bound``); other measures and target accuracies take the k that
   keeps all rows of 95% of persons (``quantile_bound``). Both are post-processing.
3. ``bounded_table`` runs in the database (SQLAlchemy Core; the same statement on SQLite and
   PostgreSQL) over the query facts in ``record_persons`` (each record's person, its rank among
   the person's records of the dataset by event date, its dimension values and first-in-cell
   marks, kept by the linkage service: ``hub.dimensions``), restricted to ``rank <= k``, filtered
   and grouped by the requested dimensions. A count of persons reads each person's first record
   per cell from the marks, so it needs neither a join nor a GROUP BY person; ``records`` is
   joined only for a measure of an attribute. Only the contingency table comes back to Python.
4. The table is aligned to the full key set (empty cells are 0) and noised by
   ``privacy.dp.mechanisms``; the agreement's post-processing runs on the noisy values only.
5. In one transaction: lock the (organisation, agreement, period) budget row, return the stored
   release if the same query was answered meanwhile, check ``budget.decide``, insert the spend,
   the release and the ``query.release`` audit event, commit. Then the release is returned.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
from pydantic import ValidationError
from sqlalchemy import (
    Connection,
    Engine,
    Float,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    not_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from agreements import Agreement
from hub import dimensions
from hub.audit import Actor, append_event
from hub.errors import Conflict, HubError, Unprocessable
from hub.models import (
    BudgetSpendRow,
    QueryBudgetRow,
    RecordPersonRow,
    RecordRow,
    ReleaseRow,
    UploadRow,
)
from privacy.dp import accuracy, bounds, budget, mechanisms, postprocess
from privacy.dp.budget import Filter, LinkageCondition, Query, Spend

BOUND_SHARE = 0.02
"""Epsilon of a population's rows-per-person histogram, as a share of the agreement's per-query
cap. The histogram is released once per population, data and budget period, and every query on
that population chooses its bound from it (``hub.queries`` docstring)."""
BOUND_QUANTILE = 0.95
MAX_ROWS = 10
assert MAX_ROWS + 1 <= dimensions.MASKED_RANKS  # counts read first-in-cell marks up to rank 11
"""Public cap of the bound candidates (1..MAX_ROWS rows per person)."""
MAX_CELLS = 200_000
MAX_QUANTILE_CANDIDATES = 2_001
COUNT_SHARE = 0.5
"""Share of a mean's release epsilon that goes to the noisy count."""

TOTAL = "total"  # the one key column of a query without group-by


class QueryRefused(HubError):
    """The query is well formed but the agreement does not allow it."""

    status_code = 403


class BudgetExhausted(Conflict):
    """The budget left for this period cannot pay for the query."""


# Purpose ids are short names; a longer text would only be copied into the permanent audit log.
MAX_PURPOSE_CHARS = 200


def parse_request(raw: bytes | Mapping[str, Any]) -> tuple[str | None, Query]:
    """The purpose and the ``Query`` of a request body (the query's fields plus ``purpose``);
    422 with the problems (never the input) otherwise. The purpose is checked by the policy
    and recorded in the audit trail; it is not part of the query's canonical form, so the same
    query for another purpose gets the same stored release."""
    try:
        data = json.loads(raw) if isinstance(raw, bytes | bytearray) else dict(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than any query
        raise Unprocessable(
            "invalid_query",
            "The request body is not JSON, or holds a number too long to read: send one JSON "
            'object, e.g. {"purpose": ..., "agreement_id": ..., "dataset": ..., "measure": ...}.',
        ) from None
    if not isinstance(data, dict):
        raise Unprocessable("invalid_query", "The request body must be a JSON object.")
    data = dict(data)
    purpose = data.pop("purpose", None)
    if purpose is not None and (not isinstance(purpose, str) or len(purpose) > MAX_PURPOSE_CHARS):
        raise Unprocessable(
            "invalid_query",
            f"purpose must be a purpose id of the agreement (text of at most "
            f"{MAX_PURPOSE_CHARS} characters), e.g. serious-violence-needs-assessment.",
        )
    try:
        return purpose, Query.model_validate(data)
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in error.errors()
        ]
        raise Unprocessable("invalid_query", "The query is not valid.", details=problems) from None


def query_dimensions(query: Query) -> list[str]:
    """Every dimension the query uses (group-by, filters, linkage-condition filters)."""
    names = set(query.group_by) | {f.dimension for f in query.filters}
    for condition in query.linkage:
        names |= {f.dimension for f in condition.filters}
    return sorted(names)


def door_epsilon(query: Query, agreement: Agreement) -> float:
    """The epsilon the door checks against the per-query cap: the query's own, or for a
    target half-width the least it could cost (the release at bound 1)."""
    if query.epsilon is not None:
        return query.epsilon
    try:
        return max(_release_epsilon(query, agreement, 1), budget.MIN_EPSILON)
    except (accuracy.AccuracyError, HubError):
        return math.inf


def histogram_epsilon(agreement: Agreement) -> float:
    """Epsilon of one release of a population's rows-per-person histogram."""
    return BOUND_SHARE * agreement.outputs.budget.epsilon_per_query


# --- plan: everything that needs no data --------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    query: Query
    agreement: Agreement
    keyset: pl.DataFrame
    key_columns: tuple[str, ...]
    clamp: mechanisms.Clamp | None
    cap: Spend  # per period
    per_query: float
    period: str


def plan(query: Query, agreement: Agreement, today: date) -> Plan:
    """Check ``query`` against ``agreement``; 422 or 403 with what to change."""
    outputs = agreement.outputs
    if query.agreement_id != agreement.id:
        raise Unprocessable("agreement_mismatch", "The query names another agreement.")
    names = [d.name for d in agreement.datasets]
    if query.dataset not in names:
        raise QueryRefused(
            "dataset_not_in_agreement",
            f"Agreement {agreement.id} does not cover dataset {query.dataset!r}; "
            f"its datasets are {', '.join(names)}.",
        )
    for condition in query.linkage:
        if condition.dataset not in names:
            raise QueryRefused(
                "linkage_dataset_not_in_agreement",
                f"The linkage condition names dataset {condition.dataset!r}, which agreement "
                f"{agreement.id} does not cover; its datasets are {', '.join(names)}.",
            )
    if query.measure not in outputs.measures:
        raise QueryRefused(
            "measure_not_permitted",
            f"Agreement {agreement.id} does not permit measure {query.measure}; "
            f"it permits {', '.join(outputs.measures)}.",
        )
    clamp = None
    if query.attribute is not None:
        found = [
            n
            for n in outputs.numeric_attributes
            if n.dataset == query.dataset and n.field == query.attribute
        ]
        if not found:
            allowed = [n.field for n in outputs.numeric_attributes if n.dataset == query.dataset]
            raise QueryRefused(
                "attribute_not_permitted",
                f"Attribute {query.attribute!r} of {query.dataset} has no clamping bounds in "
                f"agreement {agreement.id}; numeric attributes of this dataset: "
                f"{', '.join(allowed) or 'none'}.",
            )
        clamp = mechanisms.Clamp(found[0].lower, found[0].upper)
    public = {d.name: list(d.values) for d in outputs.dimensions}
    used = query_dimensions(query)
    not_permitted = [d for d in used if d not in public]
    if not_permitted:
        raise QueryRefused(
            "dimension_not_permitted",
            f"Dimensions {', '.join(not_permitted)} are not permitted by agreement "
            f"{agreement.id}; permitted: {', '.join(public)}.",
        )
    try:
        budget.check_public_values(query, public)
        for condition in query.linkage:
            for f in condition.filters:
                bad = [v for v in f.values if v not in set(public[f.dimension])]
                if bad:
                    raise budget.QueryValueError(
                        f"linkage filter on {f.dimension!r}: {bad[:5]} not in the public value set"
                    )
    except budget.QueryValueError as error:
        raise Unprocessable("value_not_public", f"{error}.") from None
    main = (query.dataset, [*query.group_by, *(f.dimension for f in query.filters)])
    others = [(c.dataset, [f.dimension for f in c.filters]) for c in query.linkage]
    for dataset, dims in [main, *others]:
        missing = [d for d in dims if not dimensions.available(d, dataset)]
        if missing:
            raise Unprocessable(
                "dimension_not_in_dataset",
                f"Dataset {dataset} has no field for dimension(s) {', '.join(missing)} "
                "(see docs/queries.md, 'Dimensions').",
            )
    per_query = outputs.budget.epsilon_per_query
    if query.epsilon is not None and query.epsilon > per_query + budget.TOLERANCE:
        raise QueryRefused(
            "epsilon_above_cap",
            f"Epsilon {query.epsilon:g} is above agreement {agreement.id}'s per-query cap of "
            f"{per_query:g}; ask for at most {per_query:g} (a wider half-width).",
        )
    filters = {f.dimension: list(f.values) for f in query.filters}
    key_columns = tuple(query.group_by) or (TOTAL,)
    if query.group_by:
        values = [filters.get(d, public[d]) for d in query.group_by]
        cells = math.prod(len(v) for v in values)
        if cells > MAX_CELLS:
            raise Unprocessable(
                "too_many_cells",
                f"The group-by has {cells:,} cells (at most {MAX_CELLS:,}); group by fewer "
                "dimensions or filter them.",
            )
        rows = list(itertools.product(*values))
        keyset = pl.DataFrame(
            {d: [r[i] for r in rows] for i, d in enumerate(query.group_by)},
            schema={d: pl.String for d in query.group_by},
        )
    else:
        keyset = pl.DataFrame({TOTAL: ["all"]})
    b = outputs.budget
    return Plan(
        query=query,
        agreement=agreement,
        keyset=keyset,
        key_columns=key_columns,
        clamp=clamp,
        cap=Spend(b.epsilon_per_period, b.delta),
        per_query=per_query,
        period=budget.period_label(today, b.period),
    )


def _clamp_of(query: Query, agreement: Agreement) -> mechanisms.Clamp | None:
    for n in agreement.outputs.numeric_attributes:
        if n.dataset == query.dataset and n.field == query.attribute:
            return mechanisms.Clamp(n.lower, n.upper)
    return None


def _candidates(clamp: mechanisms.Clamp) -> list[float]:
    """Public quantile candidates: whole numbers across the clamping range, or an even grid."""
    lo, hi = math.floor(clamp.lower), math.ceil(clamp.upper)
    if hi - lo + 1 <= MAX_QUANTILE_CANDIDATES:
        return [float(v) for v in range(lo, hi + 1)]
    step = (clamp.upper - clamp.lower) / (MAX_QUANTILE_CANDIDATES - 1)
    return [clamp.lower + i * step for i in range(MAX_QUANTILE_CANDIDATES)]


def sensitivity(query: Query, clamp: mechanisms.Clamp | None, bound: int) -> float:
    """l1 sensitivity of the release at rows-per-person ``bound`` (privacy.dp.mechanisms)."""
    cb = mechanisms.ContributionBounds(bound, bound)
    if query.measure == "count_records":
        return mechanisms.count_sensitivity("records", cb)
    if query.measure == "count_persons":
        return mechanisms.count_sensitivity("persons", cb)
    assert clamp is not None
    return mechanisms.sum_sensitivity(cb, clamp)


def half_width(query: Query, agreement: Agreement, epsilon: float, bound: int) -> float:
    """The 95% half-width (ranks for a quantile) of a release at ``epsilon`` and ``bound``."""
    clamp = _clamp_of(query, agreement)
    if query.measure in ("count_records", "count_persons"):
        return float(accuracy.discrete_laplace_half_width(epsilon, sensitivity(query, None, bound)))
    assert clamp is not None
    if query.measure == "sum":
        return accuracy.laplace_half_width(epsilon, sensitivity(query, clamp, bound))
    if query.measure == "mean":
        return accuracy.mean_half_width(epsilon, bound, clamp.lower, clamp.upper, 100)
    return accuracy.quantile_rank_half_width(
        epsilon, bound, float(query.quantile or 0.5), len(_candidates(clamp))
    )


def _release_epsilon(query: Query, agreement: Agreement, bound: int) -> float:
    """Epsilon of the release part that gives ``query.target_half_width`` at ``bound``."""
    target = float(query.target_half_width or 0)
    clamp = _clamp_of(query, agreement)
    if query.measure in ("count_records", "count_persons"):
        return accuracy.discrete_laplace_epsilon(target, sensitivity(query, None, bound))
    assert clamp is not None
    if query.measure == "sum":
        return accuracy.laplace_epsilon(target, sensitivity(query, clamp, bound))
    if query.measure == "mean":
        return accuracy.mean_epsilon(target, bound, clamp.lower, clamp.upper, 100)
    return accuracy.quantile_epsilon(
        target, bound, float(query.quantile or 0.5), len(_candidates(clamp))
    )


def preview(query: Query, agreement: Agreement, today: date) -> dict[str, Any]:
    """Accuracy for an epsilon, or epsilon for an accuracy, at each possible bound. Reads no
    data and spends nothing: the bound is chosen from the data only when the query runs."""
    plan(query, agreement, today)
    cap = agreement.outputs.budget.epsilon_per_query
    rows: list[dict[str, Any]] = []
    for bound in range(1, 6):
        try:
            if query.epsilon is not None:
                rows.append(
                    {
                        "bound": bound,
                        "epsilon": query.epsilon,
                        "half_width": half_width(query, agreement, query.epsilon, bound),
                    }
                )
            else:
                eps = max(_release_epsilon(query, agreement, bound), budget.MIN_EPSILON)
                rows.append(
                    {
                        "bound": bound,
                        "epsilon": eps,
                        "half_width": query.target_half_width,
                        "within_cap": eps <= cap + budget.TOLERANCE,
                    }
                )
        except accuracy.AccuracyError as error:
            rows.append({"bound": bound, "error": str(error)})
    return {
        "agreement_id": agreement.id,
        "measure": query.measure,
        "epsilon_per_query": cap,
        "epsilon_rows_histogram": histogram_epsilon(agreement),
        "accuracy": "95% half-width"
        + (" in ranks (records)" if query.measure == "quantile" else ""),
        "note": "the rows-per-person bound is chosen when the query runs, from a DP histogram "
        "of the population's rows per person; that histogram costs epsilon_rows_histogram once "
        "per population, data and budget period (the first query on it pays), then nothing; "
        "the table gives the accuracy at each bound the query may get",
        "by_bound": rows,
        "spent": 0.0,
    }


# --- SQL ----------------------------------------------------------------------------------------

_R = RecordRow.__table__
_RP = RecordPersonRow.__table__
_U = UploadRow.__table__


def shift_days(column: ColumnElement[Any], days: int, dialect: str) -> ColumnElement[Any]:
    """``column`` + ``days`` days (``days`` is a validated int, inlined)."""
    days = int(days)
    if dialect == "postgresql":
        return column + literal_column(str(days))
    return func.date(column, f"{days:+d} days")


def _filters(
    filters: Sequence[Filter], facts: Any, codes: dimensions.Codes
) -> list[ColumnElement[bool]]:
    return [
        facts.c[f.dimension].in_(dimensions.codes_of(codes, f.dimension, f.values)) for f in filters
    ]


@dataclass(frozen=True)
class _Context:
    """What a statement needs from the database before it is built: the dimension codes, and
    the agreement's live uploads per dataset (as a literal list, the uploads filter is one
    comparison per row in the scan, not a join)."""

    codes: dimensions.Codes
    uploads: dict[str, list[int]]
    dialect: str


def _context(connection: Connection, p: Plan) -> _Context:
    datasets = sorted({p.query.dataset, *(c.dataset for c in p.query.linkage)})
    uploads: dict[str, list[int]] = {d: [] for d in datasets}
    for pk, dataset in connection.execute(
        select(_U.c.id, _U.c.dataset).where(
            _U.c.agreement_id == p.agreement.id, _U.c.dataset.in_(datasets), _U.c.live == 1
        )
    ):
        uploads[dataset].append(int(pk))
    return _Context(dimensions.load_codes(connection), uploads, connection.dialect.name)


def _linkage(condition: LinkageCondition, context: _Context) -> ColumnElement[bool]:
    """EXISTS a record of the same person in ``condition.dataset`` (live, this agreement),
    within the date window around the query record's event date."""
    other = _RP.alias("lrp")
    where: list[ColumnElement[bool]] = [
        other.c.person_id == _RP.c.person_id,
        other.c.upload_pk.in_(context.uploads[condition.dataset]),
    ]
    if condition.days_before is not None or condition.days_after is not None:
        before = condition.days_before or 0
        after = condition.days_after or 0
        dialect = context.dialect
        where.append(other.c.event_date >= shift_days(_RP.c.event_date, -before, dialect))
        where.append(other.c.event_date <= shift_days(_RP.c.event_date, after, dialect))
    where += _filters(condition.filters, other, context.codes)
    found = exists(select(literal(1)).select_from(other).where(*where))
    return found if condition.appears else not_(found)


def _value(p: Plan) -> ColumnElement[Any]:
    """The attribute as a number, clamped to the agreement's bounds."""
    assert p.clamp is not None and p.query.attribute is not None
    raw = cast(_R.c.attributes[p.query.attribute].as_string(), Float)
    lo, hi = literal(p.clamp.lower, Float), literal(p.clamp.upper, Float)
    return case((raw < lo, lo), (raw > hi, hi), else_=raw)


def _population(p: Plan, context: _Context) -> tuple[Any, list[ColumnElement[bool]]]:
    """FROM and WHERE of the query's records (before the contribution bound): the query facts
    in ``record_persons``, joined to ``records`` only when a measure needs an attribute."""
    q = p.query
    where: list[ColumnElement[bool]] = [_RP.c.upload_pk.in_(context.uploads[q.dataset])]
    source: Any = _RP
    if q.attribute is not None:
        source = _RP.join(_R, and_(_R.c.upload_pk == _RP.c.upload_pk, _R.c.row == _RP.c.row))
        where.append(_R.c.attributes[q.attribute].as_string().is_not(None))
    where += _filters(q.filters, _RP, context.codes)
    where += [_linkage(c, context) for c in q.linkage]
    return source, where


def _first_in_cell(p: Plan) -> ColumnElement[bool] | None:
    """For a count of persons: keep only each person's lowest-ranked record among its records
    with the same values on the group-by and filter dimensions (``hub.dimensions``), so the
    count needs no grouping by person. None where those marks do not give the count: a
    linkage condition (it keeps or drops single records), or a filter admitting several values
    of a dimension the query does not group by (a person would count once per value)."""
    q = p.query
    if q.measure != "count_persons" or q.linkage:
        return None
    if any(len(f.values) > 1 and f.dimension not in q.group_by for f in q.filters):
        return None
    bit = dimensions.subset_bit([*q.group_by, *(f.dimension for f in q.filters)])
    return _RP.c.first_mask.bitwise_and(bit) != 0


def _tune(connection: Connection) -> None:
    """PostgreSQL, for this transaction only: keep the aggregation's hash table in memory,
    skip JIT compilation (it costs more than it saves on one aggregation) and let the planner
    use parallel workers whenever a table is big enough to be scanned in parallel (~20%
    faster at 200k rows; small tables stay serial, below min_parallel_table_scan_size)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        connection.exec_driver_sql("SET LOCAL jit = off")
        connection.exec_driver_sql("SET LOCAL parallel_setup_cost = 0")
        connection.exec_driver_sql("SET LOCAL parallel_tuple_cost = 0")


def rank_histogram(connection: Connection, p: Plan) -> dict[int, int]:
    """{m: persons whose highest rank among the query's records is m}: keeping each person's
    first m records (by rank) keeps all of that person's records in the query. One value per
    person, so removing a person changes one entry (d_in = 1 for the DP quantile)."""
    _tune(connection)
    source, where = _population(p, _context(connection, p))
    per_person = (
        select(func.max(_RP.c.rank_in_dataset).label("m"))
        .select_from(source)
        .where(*where)
        .group_by(_RP.c.person_id)
        .subquery()
    )
    rows = connection.execute(select(per_person.c.m, func.count()).group_by(per_person.c.m)).all()
    return {int(m): int(n) for m, n in rows}


def bounded_table(connection: Connection, p: Plan, bound: int) -> pl.DataFrame:
    """The contingency table at rows-per-person ``bound``, in the database.

    Columns: the key columns and ``value`` (counts, sums), or ``sum`` and ``count`` (mean), or
    ``value`` and ``n`` (quantile: records per clamped whole value, expanded in Python)."""
    q = p.query
    _tune(connection)
    context = _context(connection, p)
    source, where = _population(p, context)
    where = [*where, _RP.c.rank_in_dataset <= bound]
    dims = [_RP.c[d].label(d) for d in q.group_by]
    first_in_cell = _first_in_cell(p)
    if first_in_cell is not None:  # one scan: each person's first record per cell
        statement = (
            select(*dims, func.count().label("value"))
            .select_from(source)
            .where(*where, first_in_cell)
            .group_by(*dims)
        )
    elif q.measure == "count_persons":
        distinct = (
            select(*dims, _RP.c.person_id).select_from(source).where(*where).distinct().subquery()
        )
        keys = [distinct.c[d] for d in q.group_by]
        statement = select(*keys, func.count().label("value")).group_by(*keys)
    elif q.measure == "count_records":
        statement = (
            select(*dims, func.count().label("value"))
            .select_from(source)
            .where(*where)
            .group_by(*dims)
        )
    elif q.measure == "sum":
        statement = (
            select(*dims, func.sum(_value(p)).label("value"))
            .select_from(source)
            .where(*where)
            .group_by(*dims)
        )
    elif q.measure == "mean":
        statement = (
            select(*dims, func.sum(_value(p)).label("sum"), func.count().label("count"))
            .select_from(source)
            .where(*where)
            .group_by(*dims)
        )
    else:  # quantile: records per whole value (the candidates are whole numbers)
        value = func.round(_value(p)).label("value")
        statement = (
            select(*dims, value, func.count().label("n"))
            .select_from(source)
            .where(*where)
            .group_by(*dims, value)
        )
    rows = connection.execute(statement).all()
    selected = [c.name for c in statement.selected_columns]
    columns = list(q.group_by) + [c for c in selected if c not in q.group_by]
    frame = pl.DataFrame(
        [tuple(r) for r in rows], schema=columns, orient="row", infer_schema_length=None
    )
    for d in q.group_by:
        frame = frame.with_columns(pl.col(d).cast(pl.Int16))
    frame = dimensions.decode(context.codes, frame, q.group_by)
    if not q.group_by:
        frame = frame.with_columns(pl.lit("all").alias(TOTAL))
    # Records whose dimension is missing or outside the public key set are not counted.
    return frame.join(p.keyset, on=list(p.key_columns), how="semi")


# --- the rows-per-person histogram: released once per population, data and period -------------


@dataclass(frozen=True)
class BoundChoice:
    bound: int
    histogram: dict[str, Any]  # the stored histogram release it was chosen from
    rule: str


def population_document(p: Plan) -> dict[str, Any]:
    """What a query's rows-per-person histogram depends on: the records it counts (dataset,
    filters, linkage conditions, the attribute a measure needs), not its group-by or measure."""
    q = p.query
    return {
        "kind": "rows_per_person_histogram",
        "agreement_id": p.agreement.id,
        "dataset": q.dataset,
        "attribute": q.attribute,
        "filters": sorted([f.dimension, sorted(f.values)] for f in q.filters),
        "linkage": sorted(json.dumps(c.model_dump(mode="json"), sort_keys=True) for c in q.linkage),
        "max_rows": MAX_ROWS,
        "period": p.period,
    }


def population_hash(connection: Connection, p: Plan) -> str:
    """The key of a population's histogram release: its document and the live uploads it
    reads (a new or withdrawn upload changes the data, and the histogram is released anew)."""
    datasets = {p.query.dataset, *(c.dataset for c in p.query.linkage)}
    uploads = connection.execute(
        select(UploadRow.upload_id)
        .where(
            UploadRow.agreement_id == p.agreement.id,
            UploadRow.dataset.in_(sorted(datasets)),
            UploadRow.live == 1,
        )
        .order_by(UploadRow.upload_id)
    ).scalars()
    canonical = json.dumps(
        {**population_document(p), "uploads": list(uploads)}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def histogram_from_document(document: Mapping[str, Any]) -> bounds.RowsHistogram:
    return bounds.RowsHistogram(
        {int(k): float(v) for k, v in document["bins"].items()},
        float(document["scale"]),
        float(document["epsilon"]),
        int(document["max_rows"]),
    )


# --- release ------------------------------------------------------------------------------------


def _post_processing(p: Plan) -> postprocess.PostProcessing:
    outputs = p.agreement.outputs
    if p.query.measure in ("count_records", "count_persons"):
        return postprocess.PostProcessing(
            non_negative=True,
            integer=True,
            round_to_base=outputs.rounding_base if outputs.rounding_base > 1 else None,
            suppress_below=float(outputs.suppression_threshold)
            if outputs.suppression_threshold
            else None,
        )
    if p.query.measure == "sum":
        non_negative = p.clamp is not None and p.clamp.lower >= 0
        return postprocess.PostProcessing(non_negative=non_negative)
    return postprocess.PostProcessing()


def noise(p: Plan, table: pl.DataFrame, bound: int, epsilon: float) -> mechanisms.Release:
    q = p.query
    cb = mechanisms.ContributionBounds(bound, bound)
    keyset = p.keyset
    if q.measure in ("count_records", "count_persons"):
        unit: mechanisms.CountUnit = "records" if q.measure == "count_records" else "persons"
        table = table.with_columns(pl.col("value").cast(pl.Int64))
        return mechanisms.release_count(table, keyset, unit=unit, bounds=cb, epsilon=epsilon)
    assert p.clamp is not None
    if q.measure == "sum":
        table = table.with_columns(pl.col("value").cast(pl.Float64))
        return mechanisms.release_sum(table, keyset, bounds=cb, clamp=p.clamp, epsilon=epsilon)
    if q.measure == "mean":
        table = table.with_columns(pl.col("sum").cast(pl.Float64), pl.col("count").cast(pl.Int64))
        return mechanisms.release_mean(
            table, keyset, bounds=cb, clamp=p.clamp, epsilon=epsilon, count_share=COUNT_SHARE
        )
    rows = (
        table.select(
            *p.key_columns,
            pl.col("value").cast(pl.Float64).repeat_by(pl.col("n").cast(pl.UInt32)),
        )
        .explode("value")
        .drop_nulls("value")
    )
    return mechanisms.release_quantile(
        rows,
        keyset,
        alpha=float(q.quantile or 0.5),
        candidates=_candidates(p.clamp),
        bounds=cb,
        epsilon=epsilon,
    )


def _json_number(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def release_document(
    p: Plan,
    release: mechanisms.Release,
    *,
    release_id: str,
    query_hash: str,
    bound: BoundChoice,
    epsilon: float,
    spec: postprocess.PostProcessing,
    created_at: datetime,
) -> dict[str, Any]:
    meta = release.meta
    table = release.table
    cells = [{k: _json_number(v) for k, v in row.items()} for row in table.iter_rows(named=True)]
    if not p.query.group_by:
        for cell in cells:
            cell.pop(TOTAL, None)
    return {
        "release_id": release_id,
        "query_hash": query_hash,
        "agreement_id": p.agreement.id,
        "dataset": p.query.dataset,
        "measure": meta.measure,
        "group_by": list(p.query.group_by),
        "cells": cells,
        "epsilon": epsilon,
        "delta": meta.delta,
        "epsilon_spent_by_mechanism": meta.epsilon,
        "mechanism": meta.mechanism,
        "unit_of_privacy": meta.unit_of_privacy,
        "contribution_bound": {
            "rows_per_person": bound.bound,
            "groups_per_person": bound.bound if p.query.measure == "count_persons" else None,
            "chosen_by": f"{bound.rule}, from the released rows-per-person histogram "
            f"(candidates 1..{MAX_ROWS})",
            "histogram_release_id": bound.histogram["release_id"],
            "histogram_epsilon": bound.histogram["epsilon"],
            "histogram_period": bound.histogram["period"],
        },
        "clamp": None
        if meta.clamp is None
        else {"lower": meta.clamp.lower, "upper": meta.clamp.upper},
        "sensitivity": meta.sensitivity,
        "scale": meta.scale,
        "confidence": meta.confidence,
        "interval": meta.interval,
        "post_processing": {
            "non_negative": spec.non_negative,
            "integer": spec.integer,
            "round_to_base": spec.round_to_base,
            "suppress_below": spec.suppress_below,
            "applied_to": "noisy values only",
        },
        "notes": list(meta.notes),
        "period": p.period,
        "created_at": created_at.isoformat(),
    }


@dataclass(frozen=True)
class Budget:
    organisation: str
    agreement_id: str
    period: str
    cap: Spend
    spent: Spend

    def describe(self) -> dict[str, Any]:
        left = budget.remaining(self.spent, self.cap)
        return {
            "organisation": self.organisation,
            "agreement_id": self.agreement_id,
            "period": self.period,
            "epsilon_cap": self.cap.epsilon,
            "epsilon_spent": self.spent.epsilon,
            "epsilon_remaining": left.epsilon,
            "delta_cap": self.cap.delta,
            "delta_spent": self.spent.delta,
        }


def spent(connection: Connection, organisation: str, agreement_id: str, period: str) -> Spend:
    row = connection.execute(
        select(
            func.coalesce(func.sum(BudgetSpendRow.epsilon), 0.0),
            func.coalesce(func.sum(BudgetSpendRow.delta), 0.0),
        ).where(
            BudgetSpendRow.organisation == organisation,
            BudgetSpendRow.agreement_id == agreement_id,
            BudgetSpendRow.period == period,
        )
    ).one()
    return Spend(float(row[0]), min(float(row[1]), 0.999999))


def _lock_budget(connection: Connection, organisation: str, agreement_id: str, period: str) -> None:
    """Take the budget's lock: create its row on demand, then update it (the first statement of
    the transaction is a write, so SQLite takes its write lock before reading anything, and
    PostgreSQL holds the row lock until commit)."""
    values = {
        "organisation": organisation,
        "agreement_id": agreement_id,
        "period": period,
        "updates": 0,
    }
    if connection.dialect.name == "postgresql":
        connection.execute(
            postgresql.insert(QueryBudgetRow).values(**values).on_conflict_do_nothing()
        )
    else:
        connection.execute(sqlite.insert(QueryBudgetRow).values(**values).on_conflict_do_nothing())
    connection.execute(
        update(QueryBudgetRow)
        .where(
            QueryBudgetRow.organisation == organisation,
            QueryBudgetRow.agreement_id == agreement_id,
            QueryBudgetRow.period == period,
        )
        .values(updates=QueryBudgetRow.updates + 1)
    )


def _stored(
    connection: Connection, agreement_id: str, organisation: str, qhash: str
) -> dict[str, Any] | None:
    result = connection.execute(
        select(ReleaseRow.result).where(
            ReleaseRow.agreement_id == agreement_id,
            ReleaseRow.organisation == organisation,
            ReleaseRow.query_hash == qhash,
        )
    ).scalar_one_or_none()
    return dict(result) if result is not None else None


class QueryService:
    """Runs queries for the API (and the benchmark) on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def budget(self, organisation: str, agreement: Agreement, today: date) -> Budget:
        b = agreement.outputs.budget
        period = budget.period_label(today, b.period)
        with self.engine.connect() as connection:
            s = spent(connection, organisation, agreement.id, period)
        return Budget(organisation, agreement.id, period, Spend(b.epsilon_per_period, b.delta), s)

    def _with_budget(
        self, document: dict[str, Any], organisation: str, agreement: Agreement, today: date
    ) -> dict[str, Any]:
        return {**document, "budget": self.budget(organisation, agreement, today).describe()}

    def run(
        self,
        query: Query,
        agreement: Agreement,
        *,
        organisation: str,
        actor: Actor,
        today: date | None = None,
    ) -> dict[str, Any]:
        today = today or date.today()
        p = plan(query, agreement, today)
        qhash = budget.query_hash(query)
        with self.engine.connect() as connection:
            stored = _stored(connection, agreement.id, organisation, qhash)
            already = spent(connection, organisation, agreement.id, p.period)
            population = population_hash(connection, p)
            histogram_doc = _stored(connection, agreement.id, organisation, population)
        if stored is not None:
            return {**self._with_budget(stored, organisation, agreement, today), "repeated": True}
        # Before reading data: can the budget pay for the least this query could cost?
        least = door_epsilon(query, agreement)
        histogram_first = 0.0 if histogram_doc is not None else histogram_epsilon(agreement)
        self._refuse_unless_fits(already, least + histogram_first, p, organisation, histogram_first)
        if histogram_doc is None:
            histogram_doc = self._release_histogram(p, population, organisation, actor)
        released = histogram_from_document(histogram_doc)

        counts = query.measure in ("count_records", "count_persons")
        if query.epsilon is not None and counts:
            bound = bounds.count_bound(released, cells=p.keyset.height, epsilon=query.epsilon)
            how = "least estimated bias + noise per cell"
        else:
            bound = bounds.quantile_bound(released, quantile=BOUND_QUANTILE)
            how = f"{BOUND_QUANTILE:g} of persons keep all their rows"
        choice = BoundChoice(bound, histogram_doc, how)
        if query.epsilon is not None:
            eps_release = query.epsilon
        else:
            try:
                eps_release = _release_epsilon(query, agreement, bound)
            except accuracy.AccuracyError as error:
                raise self._too_costly(p, bound, math.inf, f" ({error})") from None
            if eps_release > p.per_query + budget.TOLERANCE:
                raise self._too_costly(p, bound, eps_release, "")
            # a half-width wide enough to need less pays the least a release may use, and
            # gets a narrower interval than it asked for
            eps_release = max(eps_release, budget.MIN_EPSILON)
        with self.engine.connect() as connection:
            table = bounded_table(connection, p, bound)
        release_id = uuid.uuid4().hex
        noisy = noise(p, table, bound, eps_release)
        spec = _post_processing(p)
        noisy = postprocess.apply(noisy, spec)
        document = release_document(
            p,
            noisy,
            release_id=release_id,
            query_hash=qhash,
            bound=choice,
            epsilon=eps_release,
            spec=spec,
            created_at=datetime.now(UTC),
        )
        with self.engine.begin() as connection:
            _lock_budget(connection, organisation, agreement.id, p.period)
            stored = _stored(connection, agreement.id, organisation, qhash)
            if stored is not None:  # answered meanwhile (another request, another process)
                return {
                    **self._with_budget(stored, organisation, agreement, today),
                    "repeated": True,
                }
            self._spend_or_refuse(connection, p, organisation, eps_release)
            self._record(
                connection,
                p,
                organisation=organisation,
                actor=actor,
                qhash=qhash,
                epsilon=eps_release,
                release_id=release_id,
                query_document=p.query.model_dump(mode="json"),
                document=document,
                reason=(
                    f"released {p.query.measure} of {p.query.dataset} "
                    f"({p.keyset.height} cells) at epsilon {eps_release:.6g}"
                ),
            )
        return {**self._with_budget(document, organisation, agreement, today), "repeated": False}

    def _release_histogram(
        self, p: Plan, population: str, organisation: str, actor: Actor
    ) -> dict[str, Any]:
        """Release the population's rows-per-person histogram (or return the one another
        request released meanwhile), spending ``histogram_epsilon`` in its own transaction."""
        with self.engine.connect() as connection:
            exact = rank_histogram(connection, p)
        epsilon = histogram_epsilon(p.agreement)
        released = bounds.release_rows_histogram(exact, epsilon=epsilon, max_rows=MAX_ROWS)
        del exact  # true counts never leave this function
        release_id = uuid.uuid4().hex
        document = {
            "release_id": release_id,
            "kind": "rows_per_person_histogram",
            "agreement_id": p.agreement.id,
            "dataset": p.query.dataset,
            "bins": {str(k): v for k, v in released.bins.items()},
            "last_bin": f"more than {MAX_ROWS} rows",
            "mechanism": "discrete_laplace",
            "sensitivity": 1,
            "scale": released.scale,
            "epsilon": released.epsilon,
            "max_rows": MAX_ROWS,
            "period": p.period,
            "created_at": datetime.now(UTC).isoformat(),
        }
        with self.engine.begin() as connection:
            _lock_budget(connection, organisation, p.agreement.id, p.period)
            stored = _stored(connection, p.agreement.id, organisation, population)
            if stored is not None:
                return stored
            self._spend_or_refuse(connection, p, organisation, released.epsilon)
            self._record(
                connection,
                p,
                organisation=organisation,
                actor=actor,
                qhash=population,
                epsilon=released.epsilon,
                release_id=release_id,
                query_document=population_document(p),
                document=document,
                reason=(
                    f"released the rows-per-person histogram of {p.query.dataset} "
                    f"({MAX_ROWS + 1} bins) at epsilon {released.epsilon:.6g}, from which "
                    "queries on this population choose their contribution bound"
                ),
            )
        return document

    def _too_costly(self, p: Plan, bound: int, needed: float, reason: str) -> HubError:
        return QueryRefused(
            "epsilon_above_cap",
            f"At the contribution bound chosen from the data ({bound} rows per person) a 95% "
            f"half-width of {p.query.target_half_width:g} needs epsilon {needed:.4g}, above the "
            f"per-query cap of {p.per_query:g}{reason}; ask for a wider half-width.",
        )

    def _spend_or_refuse(
        self, connection: Connection, p: Plan, organisation: str, epsilon: float
    ) -> None:
        """Under the budget lock: 409 with what is left unless the budget can pay ``epsilon``."""
        now_spent = spent(connection, organisation, p.agreement.id, p.period)
        self._refuse_unless_fits(now_spent, epsilon, p, organisation)

    def _budget_details(self, p: Plan, organisation: str, s: Spend) -> dict[str, Any]:
        return Budget(organisation, p.agreement.id, p.period, p.cap, s).describe()

    def _refuse_unless_fits(
        self,
        already: Spend,
        epsilon: float,
        p: Plan,
        organisation: str,
        histogram_first: float = 0.0,
    ) -> None:
        """409 unless the budget can pay ``epsilon`` (of which ``histogram_first`` is for the
        rows-per-person histogram this population needs before any release)."""
        decision = budget.decide(already, Spend(epsilon, 0.0), p.cap, period=p.period)
        if not decision.allowed:
            # the CLI and clients say "Refused:" themselves
            message = decision.message.removeprefix("refused: ")
            if histogram_first:
                message += (
                    f" (the epsilon needed includes {histogram_first:g} for the rows-per-person "
                    "histogram that this data needs first: new uploads since the last query "
                    "change it)"
                )
            raise BudgetExhausted(
                "budget_exhausted",
                message[0].upper() + message[1:] + ".",
                details=self._budget_details(p, organisation, already),
            )

    def _record(
        self,
        connection: Connection,
        p: Plan,
        *,
        organisation: str,
        actor: Actor,
        qhash: str,
        epsilon: float,
        release_id: str,
        query_document: dict[str, Any],
        document: dict[str, Any],
        reason: str,
    ) -> None:
        """The spend, the stored release and its ``query.release`` audit event (one
        transaction: the caller's)."""
        now = datetime.now(UTC)
        connection.execute(
            insert(BudgetSpendRow).values(
                organisation=organisation,
                agreement_id=p.agreement.id,
                period=p.period,
                epsilon=epsilon,
                delta=0.0,
                query_hash=qhash,
                release_id=release_id,
                created_at=now,
            )
        )
        connection.execute(
            insert(ReleaseRow).values(
                release_id=release_id,
                agreement_id=p.agreement.id,
                organisation=organisation,
                query_hash=qhash,
                query=query_document,
                result=document,
                epsilon=epsilon,
                delta=0.0,
                period=p.period,
                created_at=now,
            )
        )
        event = actor.event(
            "query.release",
            reason,
            resource=f"agreements/{p.agreement.id}/datasets/{p.query.dataset}",
            agreement_id=p.agreement.id,
        )
        append_event(
            connection,
            replace(event, query_hash=qhash, epsilon_spent=epsilon, release_id=release_id),
        )
