"""The columnar blobs a batch of records is kept in (``hub.records.batch_blob``)."""

from __future__ import annotations

import io
from datetime import date, datetime

import polars as pl

from hub.records import batch_blob, frame_from_blob


def _batch() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "row": pl.Series([2, 3, 4], dtype=pl.Int64),
            "location_type": ["park", None, "street"],
            "age_at_offence": pl.Series([15, None, 40], dtype=pl.Int64),
            "offence_datetime_to": [datetime(2026, 3, 1, 22, 15), None, datetime(2026, 3, 2)],
            "reported_date": [date(2026, 3, 2), date(2026, 3, 3), None],
            "knife_injury_flag": [True, False, None],
            "anchor_dob": pl.Series([1, None, 2**64 - 1], dtype=pl.UInt64),
        }
    )


def test_a_batch_reads_back_with_every_value_and_type() -> None:
    batch = _batch()
    assert frame_from_blob(batch_blob(batch)).equals(batch)


def test_batches_stored_as_arrow_ipc_before_still_read() -> None:
    # hubs upgraded from a version that wrote Arrow IPC keep those rows
    batch = _batch()
    buffer = io.BytesIO()
    batch.write_ipc(buffer, compression="zstd")
    assert frame_from_blob(buffer.getvalue()).equals(batch)


def test_stored_clks_read_back_with_their_gaps_and_a_damaged_blob_is_named() -> None:
    import numpy as np
    import pytest

    from hub.records import clk_blob, clks_from_blob

    rows = np.arange(5 * 16, dtype=np.uint64).reshape(5, 16) * np.uint64(2**40 + 7)
    present = np.array([True, False, True, True, False])
    rows[~present] = 0
    column = clks_from_blob(clk_blob(rows, present), 5, 16)
    assert column.is_null().to_list() == [False, True, False, False, True]
    assert np.array_equal(column.drop_nulls().to_numpy(), rows[present])
    with pytest.raises(ValueError, match="does not hold 5 records of 16 words"):
        clks_from_blob(clk_blob(rows, present)[:-8], 5, 16)
