"""Read a Parquet upload in batches with pyarrow's ``iter_batches``.

pyarrow is imported only here, and only when a Parquet file is opened: it alone costs a hub
~80 MB of memory, which CSV and workbook uploads never pay. Pages are checked before any is
inflated (``adapters.parquet_pages``), every column is turned into text, and batches are sized
so that a dictionary value repeated in every row cannot blow up memory.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import polars as pl

from adapters.parquet_pages import check_parquet_pages
from adapters.tables import (
    MAX_BATCH_TEXT,
    ReadError,
    Table,
    TextBudget,
    check_header,
    column_position,
    describe_bytes,
    require_rows,
    tidy,
)


def _parquet_text_refusal(limit: int) -> ReadError:
    return ReadError(
        "parquet_too_large",
        f"the Parquet file holds more than {describe_bytes(limit)} of text; split the "
        "extract into smaller uploads, or export it as CSV UTF-8",
    )


def _unreadable_parquet(what: str = "the file could not be read") -> ReadError:
    return ReadError(
        "unreadable_parquet", f"{what} as Parquet; write it again or export it as CSV UTF-8"
    )


def _parquet_column_text(name: str, dtype: pl.DataType, position: int) -> pl.Expr:
    expr = pl.col(name)
    if dtype == pl.Datetime:
        return expr.dt.to_string("%Y-%m-%dT%H:%M:%S")
    if dtype == pl.Date:
        return expr.dt.to_string("%Y-%m-%d")
    if dtype.is_float():
        # whole numbers written as floats should still validate as integers
        return (
            pl.when(expr == expr.round(0))
            .then(expr.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(expr.cast(pl.String))
        )
    if dtype.is_nested() or dtype in (pl.Binary, pl.Object):
        raise _unsupported_column(position)
    return expr.cast(pl.String)


def _unsupported_column(position: int) -> ReadError:
    # by position: a column's name may be a value when the file was written without a header
    return ReadError(
        "unsupported_column_type",
        f"column {column_position(position)} is not plain text, number, date or boolean; "
        "write it as a string column",
    )


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _parquet_texts(arrow_schema: Any) -> list[pl.Expr]:
    """Per column, the expression that turns it into text (dictionaries are decoded first)."""
    import pyarrow as pa

    texts = []
    for position, field in enumerate(arrow_schema, start=1):
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        try:
            empty = pl.from_arrow(pa.array([], type=kind))
        except Exception:
            raise _unsupported_column(position) from None
        assert isinstance(empty, pl.Series)  # an array always converts to a series
        texts.append(_parquet_column_text(field.name, empty.dtype, position))
    return texts


def _parquet_batch_rows(probe: Any, group: int, text_columns: list[str], batch_rows: int) -> int:
    """How many rows of row group ``group`` a batch may hold.

    A dictionary page stores each value once and the data pages repeat it by index, so one long
    value can fill every row of a batch. ``probe`` reads text columns as dictionaries: its first
    row brings each column's whole dictionary page, whose longest value bounds that column.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not text_columns:
        return batch_rows
    first = next(
        probe.iter_batches(
            batch_size=1, row_groups=[group], columns=text_columns, use_threads=False
        ),
        None,
    )
    widest = 0
    for column in first.columns if first is not None else []:
        if pa.types.is_dictionary(column.type) and len(column.dictionary):
            widest += pc.max(pc.binary_length(column.dictionary)).as_py() or 0
    return max(1, min(batch_rows, MAX_BATCH_TEXT // max(widest, 1)))


def _decoded(batch: Any) -> Any:
    """``batch`` with its dictionary columns decoded, so text reaches polars as String (not
    Categorical); ``_parquet_batch_rows`` sized the batch so the decoded text fits."""
    import pyarrow as pa

    if not any(pa.types.is_dictionary(column.type) for column in batch.columns):
        return batch
    columns = [
        column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _check_utf8(batch: Any) -> None:
    """``bad_encoding`` unless every text value is valid UTF-8: pyarrow passes a string
    column's bytes on unchecked, and polars crashes the whole process on invalid ones."""
    import pyarrow as pa

    for column in batch.columns:
        if _is_text(column.type):
            try:
                column.validate(full=True)
            except pa.ArrowInvalid:
                raise ReadError(
                    "bad_encoding",
                    "a text column of the Parquet file holds bytes that are not valid UTF-8; "
                    "write the file again from the source data (text in Parquet must be UTF-8)",
                ) from None


def _text_bytes(batch: Any) -> int:
    import pyarrow.compute as pc

    return sum(
        pc.sum(pc.binary_length(column)).as_py() or 0
        for column in batch.columns
        if _is_text(column.type)
    )


# Run in a child process over the file's footer alone: pyarrow aborts the whole process (C++
# std::terminate, not a Python exception) on some damaged footers, e.g. column statistics whose
# bytes do not fit the column's type, as soon as a column chunk's metadata is read.
# A Python exception there is fine (the reader reports it); only the child's death is refused.
_FOOTER_CHECK = """
import sys
import pyarrow as pa
import pyarrow.parquet as pq
try:
    metadata = pq.read_metadata(pa.BufferReader(sys.stdin.buffer.read()))
    metadata.schema.to_arrow_schema()
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for column in range(row_group.num_columns):
            row_group.column(column).to_dict()
except Exception:
    pass
"""
_FOOTER_CHECK_SECONDS = 60


def _footer_survives_pyarrow(data: bytes) -> bool:
    """Whether pyarrow can read every part of the file's footer without dying."""
    if len(data) < 12 or not data.endswith(b"PAR1"):
        return False
    length = int.from_bytes(data[-8:-4], "little")
    if length > len(data) - 12:
        return False
    footer_only = b"PAR1" + data[-8 - length :]
    try:
        # our interpreter and our script; the upload's bytes are only its standard input
        checked = subprocess.run(  # noqa: S603
            [sys.executable, "-c", _FOOTER_CHECK],
            input=footer_only,
            capture_output=True,
            timeout=_FOOTER_CHECK_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return checked.returncode == 0


def open_parquet(
    data: bytes, *, batch_rows: int, max_columns: int, max_unpacked_bytes: int
) -> Table:
    # imported here: pyarrow alone costs ~80 MB, which only Parquet uploads should pay
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not _footer_survives_pyarrow(data):
        raise _unreadable_parquet("its footer (the file's metadata) is damaged")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        arrow_schema = parquet.schema_arrow
    except Exception:
        raise _unreadable_parquet() from None
    names = check_header(list(arrow_schema.names), max_columns)
    texts = _parquet_texts(arrow_schema)
    text_columns = [field.name for field in arrow_schema if _is_text(field.type)]
    try:
        check_parquet_pages(data, parquet.metadata)
        probe = pq.ParquetFile(pa.BufferReader(data), read_dictionary=text_columns)
    except ReadError:
        raise
    except Exception:  # a damaged page header (BadThrift, IndexError) or footer
        raise _unreadable_parquet() from None

    def frames() -> Iterator[pl.DataFrame]:
        budget = TextBudget(max_unpacked_bytes, _parquet_text_refusal)
        try:
            # streamed: memory holds a batch and a page per column, whatever the row groups
            for group in range(parquet.metadata.num_row_groups):
                rows = _parquet_batch_rows(probe, group, text_columns, batch_rows)
                for batch in parquet.iter_batches(
                    batch_size=rows, row_groups=[group], use_threads=False
                ):
                    batch = _decoded(batch)
                    _check_utf8(batch)
                    budget.spend(_text_bytes(batch))
                    frame = pl.from_arrow(batch)
                    assert isinstance(frame, pl.DataFrame)  # a record batch converts to a frame
                    if frame.height:
                        yield tidy(frame.select(texts), names)
        except ReadError:
            raise
        except Exception:
            raise _unreadable_parquet("part of the file could not be read") from None

    return require_rows(names, frames())
