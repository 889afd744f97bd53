"""Generalisation: age bands at the event, postcode districts, month and year."""

from __future__ import annotations

from datetime import date

import polars as pl

from privacy.generalise import (
    age_at,
    age_band,
    age_band_expr,
    month_expr,
    postcode_district_expr,
    year_expr,
)


def test_age_at_and_bands() -> None:
    df = pl.DataFrame(
        {
            "dob": [
                date(2010, 6, 15),
                date(2010, 6, 15),
                date(2000, 2, 29),
                None,
                date(2020, 1, 1),
            ],
            "event": [
                date(2025, 6, 14),
                date(2025, 6, 15),
                date(2001, 2, 28),
                date(2020, 1, 1),
                date(2019, 1, 1),
            ],
        }
    )
    out = df.select(
        age=age_at(pl.col("dob"), pl.col("event")), band=age_band(pl.col("dob"), pl.col("event"))
    )
    assert out.get_column("age").to_list() == [14, 15, 0, None, -1]
    assert out.get_column("band").to_list() == ["10-14", "15-17", "0-9", None, None]


def test_band_edges() -> None:
    ages = [0, 9, 10, 14, 15, 17, 18, 24, 25, 90, None]
    got = pl.DataFrame({"a": pl.Series(ages, dtype=pl.Int32)}).select(age_band_expr(pl.col("a")))
    assert got.to_series().to_list() == [
        "0-9",
        "0-9",
        "10-14",
        "10-14",
        "15-17",
        "15-17",
        "18-24",
        "18-24",
        "25+",
        "25+",
        None,
    ]


def test_district_month_year() -> None:
    df = pl.DataFrame({"pc": ["sw1a1aa", "M1 1AE", "nonsense", None], "d": [date(2024, 2, 29)] * 4})
    out = df.select(
        district=postcode_district_expr(pl.col("pc")),
        month=month_expr(pl.col("d")),
        year=year_expr(pl.col("d")),
    )
    assert out.get_column("district").to_list() == ["SW1A", "M1", None, None]
    assert out.get_column("month").to_list() == [date(2024, 2, 1)] * 4
    assert out.get_column("year").to_list() == [2024] * 4
