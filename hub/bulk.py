"""Fast bulk inserts inside an open transaction.

An upload writes up to millions of rows; going through the ORM would cost more than reading,
validating and hashing them together. PostgreSQL gets ``COPY``; SQLite gets the driver's
``executemany``. Both run on the caller's connection so the rows share its transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl
from sqlalchemy import Connection, Table


def insert_rows(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    if not rows:
        return
    driver_connection = connection.connection.driver_connection
    column_list = ", ".join(f'"{name}"' for name in columns)
    if connection.dialect.name == "postgresql":
        statement = f'COPY "{table.name}" ({column_list}) FROM STDIN'
        with driver_connection.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" for _ in columns)
    cursor = driver_connection.cursor()  # type: ignore[union-attr]
    try:
        # Table and column names come from our own metadata, never from input.
        statement = f'INSERT INTO "{table.name}" ({column_list}) VALUES ({placeholders})'  # noqa: S608
        cursor.executemany(statement, rows)
    finally:
        cursor.close()


def frame_rows(frame: pl.DataFrame) -> list[tuple[Any, ...]]:
    """A frame's rows as tuples; column lists zipped are several times faster than iter_rows."""
    return list(zip(*(series.to_list() for series in frame.get_columns()), strict=True))
