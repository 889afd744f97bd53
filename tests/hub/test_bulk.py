"""Bulk inserts (``hub.bulk``): every row lands, in order, however many there are."""

from __future__ import annotations

import polars as pl
import pytest
from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, select

from hub.bulk import ROWS_PER_INSERT, insert_frame, insert_rows
from hub.db import make_engine

_metadata = MetaData()
_scratch = Table(
    "bulk_scratch",
    _metadata,
    Column("n", Integer, primary_key=True),
    Column("label", String(16)),
    Column("blob", LargeBinary),
    Column("kind", String(16)),
)


@pytest.mark.parametrize("count", [0, 1, 332, 333, 334, 1000, 5001])
def test_every_row_is_inserted_once_in_order(database_url: str, count: int) -> None:
    # counts around a multiple of the rows SQLite takes a statement (999 values / 3 columns)
    engine = make_engine(database_url)
    _metadata.create_all(engine)
    rows = [
        (n, None if n % 7 == 0 else f"row {n}", bytes([n % 256]) * (n % 5)) for n in range(count)
    ]
    with engine.begin() as connection:
        insert_rows(connection, _scratch, ["n", "label", "blob"], rows, constants={"kind": "it's"})
    with engine.connect() as connection:
        stored = connection.execute(
            select(_scratch.c.n, _scratch.c.label, _scratch.c.blob, _scratch.c.kind).order_by(
                _scratch.c.n
            )
        ).all()
    engine.dispose()
    assert [tuple(row[:3]) for row in stored] == [(n, label, blob) for n, label, blob in rows]
    assert all(row.kind == "it's" for row in stored)


@pytest.mark.parametrize("count", [1, 333, ROWS_PER_INSERT + 334])
def test_a_frame_is_inserted_row_for_row(database_url: str, count: int) -> None:
    engine = make_engine(database_url)
    _metadata.create_all(engine)
    frame = pl.DataFrame(
        {
            "n": range(count),
            "label": [None if n % 3 else f"r{n}" for n in range(count)],
            "blob": [bytes([n % 256]) for n in range(count)],
        }
    )
    with engine.begin() as connection:
        insert_frame(connection, _scratch, frame, constants={"kind": "frame"})
    with engine.connect() as connection:
        stored = connection.execute(
            select(_scratch.c.n, _scratch.c.label, _scratch.c.blob).order_by(_scratch.c.n)
        ).all()
    engine.dispose()
    assert [tuple(row) for row in stored] == frame.rows()
