"""Fast paths for the date shapes almost every extract uses, with ``privacy.normalise`` behind.

``privacy.normalise.date_expr`` understands every format agencies send, but its generality costs
~4 µs a cell, which alone would hold ingest below 100,000 rows/s. Nearly all cells are plain
``YYYY-MM-DD``, ``DD/MM/YYYY`` or ISO date-times, so those are parsed here with native polars
parsing (guarded by a shape regex so a two-digit year never reads as year 0024), and only the
cells left over are handed to ``privacy.normalise`` (see ``fill_slow_dates``).

Parsing is tiered because polars evaluates every branch of a ``when/then`` chain over the whole
column: the first pass (``iso_date_expr``/``iso_datetime_expr``) tries only the ISO shape, which
is one regex and one parse per cell; the other fast shapes and then ``privacy.normalise`` are
applied by ``fill_slow_dates`` to the few cells left null. Each tier returns the same value as
the next for the cells it parses, so the result is that of the full chain.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from privacy import normalise

_ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_UK_DATE = r"^\d{2}/\d{2}/\d{4}$"
_ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}$"
_ISO_DATETIME_T = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"
_ISO_DATETIME_MINUTES = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}$"
_UK_DATETIME_MINUTES = r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}$"


def iso_date_expr(text: pl.Expr) -> pl.Expr:
    """Date for ``YYYY-MM-DD`` only (the first tier); null for anything else."""
    return pl.when(text.str.contains(_ISO_DATE)).then(text.str.to_date("%Y-%m-%d", strict=False))


def iso_datetime_expr(text: pl.Expr) -> pl.Expr:
    """Datetime(us) for ``YYYY-MM-DDTHH:MM:SS`` only (the first tier); null for anything else."""
    return pl.when(text.str.contains(_ISO_DATETIME_T)).then(
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us")
    )


def fast_date_expr(text: pl.Expr) -> pl.Expr:
    """Date for the common shapes; null for anything else (including impossible dates)."""
    return (
        pl.when(text.str.contains(_ISO_DATE))
        .then(text.str.to_date("%Y-%m-%d", strict=False))
        .when(text.str.contains(_UK_DATE))
        .then(text.str.to_date("%d/%m/%Y", strict=False))
    )


def fast_datetime_expr(text: pl.Expr) -> pl.Expr:
    """Datetime(us) for the common shapes; null for anything else."""
    spaced = text.str.replace("T", " ", literal=True)
    return (
        pl.when(text.str.contains(_ISO_DATETIME))
        .then(spaced.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"))
        .when(text.str.contains(_ISO_DATETIME_MINUTES))
        .then(spaced.str.to_datetime("%Y-%m-%d %H:%M", strict=False, time_unit="us"))
        .when(text.str.contains(_UK_DATETIME_MINUTES))
        .then(text.str.to_datetime("%d/%m/%Y %H:%M", strict=False, time_unit="us"))
        .otherwise(fast_date_expr(text).cast(pl.Datetime("us")))
    )


# Dates outside these years are refused as not dates: polars reads "0000-06-01" as year 0, which
# Python's dates (and so the linker, the store and queries) cannot hold.
FIRST_PLAUSIBLE = dt.date(1900, 1, 1)
LAST_PLAUSIBLE = dt.date(2199, 12, 31)


def only_plausible_dates(
    frame: pl.DataFrame, fields: Iterable[tuple[str, str, str]]
) -> pl.DataFrame:
    """``frame`` with every typed date or date-time of ``fields`` (raw column, typed column,
    kind) outside :data:`FIRST_PLAUSIBLE`..:data:`LAST_PLAUSIBLE` made null, so that its row
    is reported like any other impossible date."""
    typed = [name for _, name, _ in fields]
    if not typed:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).dt.date().is_between(FIRST_PLAUSIBLE, LAST_PLAUSIBLE))
        .then(pl.col(name))
        .alias(name)
        for name in typed
    )


def fill_slow_dates(frame: pl.DataFrame, fields: Iterable[tuple[str, str, str]]) -> pl.DataFrame:
    """Parse the cells the first tier left null: the other fast shapes, then ``privacy.normalise``.

    ``fields`` holds (raw column, typed column, "date" | "datetime"). Only the leftover cells are
    parsed, so a clean extract pays nothing and a messy one pays only for its messy cells.
    """
    fields = list(fields)
    if not fields:
        return frame
    pending = frame.select(
        (pl.col(raw).is_not_null() & pl.col(typed).is_null()).any().alias(typed)
        for raw, typed, _ in fields
    ).row(0, named=True)
    replacements: list[pl.Series] = []
    for raw, typed, kind in fields:
        if not pending[typed]:
            continue
        mask = pl.col(raw).is_not_null() & pl.col(typed).is_null()
        where = frame.select(pl.arg_where(mask)).to_series()
        target = pl.Date if kind == "date" else pl.Datetime("us")
        text = pl.col(raw)
        fast = fast_date_expr(text) if kind == "date" else fast_datetime_expr(text)
        slow = normalise.date_expr(text) if kind == "date" else normalise.datetime_expr(text)
        values = (
            frame.filter(mask).select(pl.coalesce(fast.cast(target), slow.cast(target))).to_series()
        )
        column = frame.get_column(typed).clone()
        column.scatter(where, values)
        replacements.append(column)
    return frame.with_columns(replacements) if replacements else frame
