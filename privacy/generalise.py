"""Generalisation of quasi-identifiers before they are stored.

Why: the store keeps only what aggregate analysis needs. Exact dates of birth and full postcodes
single people out; an age band at the time of the event, a postcode district and a month do
not (on their own). The hub applies these per agreement; they are polars expressions so they
run inside the ingest query.
"""

from __future__ import annotations

import polars as pl

from privacy.normalise import postcode_district_expr as _district_of_normalised
from privacy.normalise import postcode_expr

__all__ = [
    "AGE_BANDS",
    "age_at",
    "age_band",
    "age_band_expr",
    "month_expr",
    "postcode_district_expr",
    "year_expr",
]

# The VRU reporting bands: (label, lowest age, highest age or None for open-ended).
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-9", 0, 9),
    ("10-14", 10, 14),
    ("15-17", 15, 17),
    ("18-24", 18, 24),
    ("25+", 25, None),
)


def age_at(dob: pl.Expr, event_date: pl.Expr) -> pl.Expr:
    """Age in whole years on ``event_date`` (Int32; null if either is null).

    A birthday on 29 February is reached on 1 March in non-leap years.
    """
    years = event_date.dt.year() - dob.dt.year()
    before_birthday = (event_date.dt.month() < dob.dt.month()) | (
        (event_date.dt.month() == dob.dt.month()) & (event_date.dt.day() < dob.dt.day())
    )
    return (years - before_birthday.cast(pl.Int32)).cast(pl.Int32)


def age_band_expr(age: pl.Expr) -> pl.Expr:
    """VRU age band label for an age in years: 0-9, 10-14, 15-17, 18-24, 25+.

    Null when the age is null (unknown date of birth) or negative (date of birth after event).
    """
    label: pl.Expr = pl.lit(None, dtype=pl.String)
    for name, low, high in reversed(AGE_BANDS):
        condition = age >= low if high is None else age.is_between(low, high)
        label = pl.when(condition).then(pl.lit(name)).otherwise(label)
    return label


def age_band(dob: pl.Expr, event_date: pl.Expr) -> pl.Expr:
    """VRU age band at the event: ``age_band_expr(age_at(dob, event_date))``."""
    return age_band_expr(age_at(dob, event_date))


def postcode_district_expr(postcode: pl.Expr) -> pl.Expr:
    """Postcode district ("SW1A") of a raw or normalised postcode; null if not a UK postcode."""
    return _district_of_normalised(postcode_expr(postcode))


def month_expr(moment: pl.Expr) -> pl.Expr:
    """Date (or Datetime) -> Date of the first of its month."""
    return moment.dt.month_start().cast(pl.Date)


def year_expr(moment: pl.Expr) -> pl.Expr:
    """Date (or Datetime) -> calendar year (Int32)."""
    return moment.dt.year()
