"""Fast bulk inserts inside an open transaction.

An upload writes up to millions of rows; going through the ORM would cost more than reading,
validating and hashing them together. PostgreSQL gets ``COPY``; SQLite gets the driver's
``executemany``, many rows a statement. Both run on the caller's connection so the rows share
its transaction.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
from sqlalchemy import Connection, Table

# Rows turned into Python tuples at a time: a batch's rows as tuples take several times the
# memory of its columns, so they are made a slice at a time (the speed is the same).
ROWS_PER_INSERT = 2048


def insert_frame(
    connection: Connection,
    table: Table,
    frame: pl.DataFrame,
    *,
    constants: Mapping[str, int | str] | None = None,
) -> None:
    """Insert every row of ``frame`` (columns named as ``table``'s) on ``connection``.

    ``constants``: columns with the same value in every row (the upload, the dataset, the key
    version), given once rather than as frame columns.
    """
    if connection.dialect.name == "sqlite":
        # SQLAlchemy stores SQLite dates as ISO text; converting the whole column here spares
        # the driver's per-value Python date adapter.
        frame = frame.with_columns(
            pl.col(name).dt.to_string("%Y-%m-%d")
            for name, dtype in frame.schema.items()
            if dtype == pl.Date
        )
    for offset in range(0, frame.height, ROWS_PER_INSERT):
        rows = frame_rows(frame.slice(offset, ROWS_PER_INSERT))
        insert_rows(connection, table, frame.columns, rows, constants=constants)


def insert_rows(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    constants: Mapping[str, int | str] | None = None,
) -> None:
    """Insert ``rows`` (values in ``columns`` order), each with the ``constants`` columns too."""
    if not rows:
        return
    constants = constants or {}
    driver_connection = connection.connection.driver_connection
    column_list = ", ".join(f'"{name}"' for name in (*columns, *constants))
    if connection.dialect.name == "postgresql":
        statement = f'COPY "{table.name}" ({column_list}) FROM STDIN'
        extra = tuple(constants.values())
        with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row + extra if extra else row)
        return
    # SQLite: constants are SQL literals, so no row carries or binds them.
    placeholders = ", ".join([*("?" for _ in columns), *map(_sql_literal, constants.values())])
    # Table and column names come from our own metadata, never from input.
    statement = f'INSERT INTO "{table.name}" ({column_list}) VALUES '  # noqa: S608
    # Many rows a statement: executing a statement costs about as much again as storing one
    # row, so a row a statement paid that per row (~0.8 µs of ~3.7 at ingest). 999 bound
    # values is the smallest limit any SQLite build has had.
    per_statement = max(1, _SQLITE_MAX_VALUES // max(1, len(columns)))
    whole = len(rows) - len(rows) % per_statement
    cursor = driver_connection.cursor()  # type: ignore[union-attr]
    try:
        if whole:
            cursor.executemany(
                statement + ", ".join([f"({placeholders})"] * per_statement),
                (
                    tuple(itertools.chain.from_iterable(rows[start : start + per_statement]))
                    for start in range(0, whole, per_statement)
                ),
            )
        if whole < len(rows):
            cursor.executemany(statement + f"({placeholders})", rows[whole:])
    finally:
        cursor.close()


_SQLITE_MAX_VALUES = 999


def _sql_literal(value: int | str) -> str:
    if isinstance(value, int):
        return str(int(value))
    return "'" + value.replace("'", "''") + "'"


def frame_rows(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """A frame's rows as tuples; column lists zipped are several times faster than iter_rows."""
    return list(zip(*(series.to_list() for series in frame.get_columns()), strict=True))
