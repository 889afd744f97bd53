"""What the hub keeps of a row: the agreement's dataset terms applied to a canonical frame.

Direct identifiers are never kept (they have already been turned into match keys). Each
quasi-identifier is generalised exactly as the agreement states (date of birth to an age band
at the event, postcode to its district, dates to a month or year) or dropped. Attributes are
kept. Anything the agreement does not list never got this far: the adapter refused the column.
"""

from __future__ import annotations

import polars as pl

import privacy.generalise as generalise
from adapters.base import Adapter
from agreements import DatasetTerms, FieldTerms

RECORD_COLUMNS: tuple[str, ...] = (
    "row",
    "dataset",
    "event_date",
    "borough_gss_code",
    "sex",
    "age_band",
    "attributes",
)

# How a quasi-identifier that is also a linkage input (date of birth, postcode) may be kept:
# never raw. Registration refuses other rules; build_records enforces them again.
SAFE_IDENTIFIER_RULES = frozenset({"age_band_at_event", "postcode_district", "month", "year"})

_NULL_TEXT = pl.lit(None, dtype=pl.String)


def _rule(term: FieldTerms) -> str:
    if term.classification == "direct_identifier":
        return "drop"
    if term.classification == "attribute":
        return "keep"
    return term.generalise or "drop"


def build_records(frame: pl.DataFrame, terms: DatasetTerms, adapter: Adapter) -> pl.DataFrame:
    """Return one row per record with exactly ``RECORD_COLUMNS``; no identifier survives."""
    rules = {term.name: _rule(term) for term in terms.fields}
    canonical_of = {source: canonical for canonical, source in adapter.identifier_sources.items()}
    promoted = {adapter.event_date_source, adapter.borough_source, adapter.sex_source}

    attributes: list[pl.Expr] = []
    age_band = _NULL_TEXT
    for name, rule in rules.items():
        if rule == "drop" or name in promoted:
            continue
        if name in canonical_of:
            column = canonical_of[name]
            if rule == "age_band_at_event":
                age_band = generalise.age_band_expr(
                    generalise.age_at(pl.col(column), pl.col("event_date"))
                )
            elif rule in SAFE_IDENTIFIER_RULES:
                attributes.append(_generalised(pl.col(column), rule).alias(name))
            continue
        if name in frame.columns:
            attributes.append(_generalised(pl.col(name), rule).alias(name))

    for age_field in adapter.age_fields:
        if rules.get(age_field, "drop") != "drop" and age_field in frame.columns:
            # Layouts that state the age at the event fill in where the date of birth is missing.
            age_band = pl.coalesce(age_band, generalise.age_band_expr(pl.col(age_field)))

    event_date = pl.col("event_date")
    if rules.get(adapter.event_date_source) == "month":
        event_date = event_date.dt.truncate("1mo")
    return frame.select(
        pl.col("row").cast(pl.Int64),
        pl.lit(adapter.dataset).alias("dataset"),
        event_date.alias("event_date"),
        _kept_if(rules, adapter.borough_source, "borough_gss_code"),
        _kept_if(rules, adapter.sex_source, "sex"),
        age_band.alias("age_band"),
        (pl.struct(attributes).struct.json_encode() if attributes else pl.lit("{}")).alias(
            "attributes"
        ),
    )


def _kept_if(rules: dict[str, str], source: str | None, canonical: str) -> pl.Expr:
    if source is not None and rules.get(source, "drop") != "drop":
        return pl.col(canonical).cast(pl.String).alias(canonical)
    return _NULL_TEXT.alias(canonical)


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
