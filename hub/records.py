"""What the hub keeps of a row: the agreement's dataset terms applied to a canonical frame.

Direct identifiers are never kept (they have already been turned into match keys). Each
quasi-identifier is generalised exactly as the agreement states (date of birth to an age band
at the event, postcode to its district, dates to a month or year) or dropped. Attributes are
kept. Anything the agreement does not list never got this far: the adapter refused the column.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from adapters.base import Adapter
from privacy import generalise

RECORD_COLUMNS: tuple[str, ...] = (
    "row",
    "dataset",
    "event_date",
    "borough_gss_code",
    "sex",
    "age_band",
    "attributes",
)

# How a quasi-identifier that is also a linkage input (date of birth, postcode) may be kept.
SAFE_IDENTIFIER_RULES = frozenset({"age_band_at_event", "postcode_district", "month", "year"})

# Canonical columns that have a dedicated place in the records table.
_PROMOTED = {"event_date", "borough_gss_code", "sex"}


def build_records(frame: pl.DataFrame, terms: Any, adapter: Adapter) -> pl.DataFrame:
    """Return one row per record with exactly ``RECORD_COLUMNS``; no identifier survives."""
    canonical_of = {source: canonical for canonical, source in adapter.identifier_sources.items()}
    attributes: list[pl.Expr] = []
    age_band: pl.Expr = pl.lit(None, dtype=pl.String)
    kept_promoted: set[str] = set()

    for term in terms.fields:
        column = canonical_of.get(term.name, term.name)
        if term.classification == "direct_identifier":
            continue
        if column not in frame.columns:
            continue
        rule = term.generalise if term.classification == "quasi_identifier" else "keep"
        if rule == "drop":
            continue
        if rule == "age_band_at_event":
            age_band = generalise.age_band_expr(
                generalise.age_at(pl.col(column), pl.col("event_date"))
            )
            continue
        if column in canonical_of.values() and rule not in SAFE_IDENTIFIER_RULES:
            # Defence in depth: registration already refuses agreements that would keep a raw
            # date of birth or postcode, and this never writes one whatever a document says.
            continue
        if column in _PROMOTED:
            kept_promoted.add(column)
            continue
        attributes.append(_generalised(pl.col(column), rule).alias(term.name))

    age_band = pl.coalesce(age_band, _age_band_from_reported_age(frame))
    return frame.select(
        pl.col("row").cast(pl.Int64),
        pl.lit(adapter.dataset).alias("dataset"),
        pl.col("event_date"),
        _promoted(frame, "borough_gss_code", kept_promoted),
        _promoted(frame, "sex", kept_promoted),
        age_band.alias("age_band"),
        (
            pl.struct(attributes).struct.json_encode() if attributes else pl.lit("{}")
        ).alias("attributes"),
    )


def _generalised(column: pl.Expr, rule: str) -> pl.Expr:
    if rule == "keep":
        return column
    if rule == "postcode_district":
        return generalise.postcode_district_expr(column)
    if rule == "month":
        return column.dt.strftime("%Y-%m")
    if rule == "year":
        return column.dt.strftime("%Y")
    if rule == "date":
        return column.dt.date()
    raise ValueError(f"unknown generalisation rule {rule!r}")


def _promoted(frame: pl.DataFrame, name: str, kept: set[str]) -> pl.Expr:
    if name in kept and name in frame.columns:
        return pl.col(name).cast(pl.String).alias(name)
    return pl.lit(None, dtype=pl.String).alias(name)


def _age_band_from_reported_age(frame: pl.DataFrame) -> pl.Expr:
    """Some layouts carry the age at the event itself (``age_at_offence``); use it when no DOB."""
    reported = [name for name in frame.columns if name.startswith("age_at_")]
    if not reported:
        return pl.lit(None, dtype=pl.String)
    return generalise.age_band_expr(pl.col(reported[0]).cast(pl.Int64))
