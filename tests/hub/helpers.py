"""Helpers for the hub's tests: count stored rows, post extracts through the real app."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from hub.models import RecordAnchorBatchRow, RecordAttributeBatchRow, RecordRow, UploadRow

AGREEMENT = "london-vru-partnership"
POLICE = "police_violence_offences"


def stored_counts(engine: Engine) -> tuple[int, int, int]:
    """(uploads, records, records with match keys) in the database; checks on the way that the
    kept-attribute and anchor batches each hold exactly the records' rows, no more and no
    fewer."""
    with engine.connect() as connection:
        uploads = connection.execute(select(func.count()).select_from(UploadRow)).scalar_one()
        records = connection.execute(select(func.count()).select_from(RecordRow)).scalar_one()
        keys = connection.execute(
            select(func.count()).select_from(RecordRow).where(RecordRow.match_key_mask != 0)
        ).scalar_one()
        for table in (RecordAttributeBatchRow, RecordAnchorBatchRow):
            batch_rows = connection.execute(
                select(func.coalesce(func.sum(table.rows), 0))
            ).scalar_one()
            assert batch_rows == records, f"{records} records but {batch_rows} in {table.__name__}"
    return uploads, records, keys


def post_extract(
    client: TestClient,
    data: bytes,
    *,
    filename: str = "extract.csv",
    agreement: str = AGREEMENT,
    dataset: str = POLICE,
) -> Any:
    return client.post(
        f"/v1/agreements/{agreement}/datasets/{dataset}/uploads",
        files={"file": (filename, data)},
    )
