"""What every upload reader shares: the ``Table`` it returns, the ``ReadError`` it refuses with,
the header checks, and the helpers that turn cells into tidy all-string batches.

Error messages name columns by position, never by their header text: a file without a header
row has its first data row read as the header (DEVELOPERS.md, promise 1).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import polars as pl

# The most a compressed upload may unpack to (open_table's ``max_unpacked_bytes``): a
# workbook's parts, and the cell text a workbook or Parquet file decodes to. The biggest honest
# workbook, a full sheet of 1,048,576 rows x 40 columns, is ~2 GiB of sheet XML (~48 bytes a
# cell in openpyxl's output) holding ~1 GiB of text; 4 GiB leaves room for long cells and is
# twice the CSV the hub accepts by default (max_upload_bytes, 2 GiB).
MAX_UNPACKED_BYTES = 4 * 1024**3
# A workbook or Parquet batch is cut early once its cells hold this much text. Compression
# stores a repeated value once (a shared string, a dictionary entry), so a few kilobytes can
# put one long value in every row, and a batch of batch_rows rows would copy it that often.
# Honest batches (16,384 rows x 40 cells of ~20 characters: ~13 MB) never reach it.
MAX_BATCH_TEXT = 32 * 1024**2


class ReadError(Exception):
    """A file-level problem: the upload is refused as a whole. ``message`` never holds a cell."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(slots=True)
class Table:
    """An opened upload: normalised header names and a one-shot iterator of batches.

    Every batch is a ``pl.DataFrame`` whose columns are exactly ``columns``, all ``pl.String``,
    values stripped of surrounding whitespace, empty cells null. Blank lines/rows are skipped, so
    record ``i`` of the data (0-based) is spreadsheet row ``i + 2``.
    """

    columns: list[str]
    batches: Iterator[pl.DataFrame]


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def normalise_header(name: str) -> str:
    """``" Date of Birth"`` → ``"date_of_birth"``: strip BOM/space, lower-case, spaces → _."""
    return "_".join(name.replace("\ufeff", "").strip().lower().split())


def check_header(raw: list[str], max_columns: int) -> list[str]:
    """Normalised names, or a ReadError that names columns by position only.

    When a file has no header row its first data row is read as the header, so header cells
    may be names or dates of birth: never quote them (promise 1).
    """
    if len(raw) > max_columns:
        raise ReadError(
            "too_many_columns",
            f"the header has {len(raw)} columns, more than the {max_columns} accepted; "
            "check the delimiter and that the first row is the header",
        )
    names = [normalise_header(name) for name in raw]
    for position, name in enumerate(names, start=1):
        if not name:
            raise ReadError(
                "empty_header",
                f"column {column_position(position)} has no name in the header; give every column "
                "its name from the extract layout (the first row must be the header)",
            )
    first_seen: dict[str, int] = {}
    for position, name in enumerate(names, start=1):
        if name in first_seen:
            raise ReadError(
                "duplicate_header",
                f"columns {column_position(first_seen[name])} and {column_position(position)} "
                "have the same name in the header (ignoring case and spaces); keep one of them, "
                "or if the first row is data rather than the header, add the header row from "
                "the extract layout",
            )
        first_seen[name] = position
    return names


def column_position(position: int) -> str:
    """``3`` → ``"3 (C)"``, ``28`` → ``"28 (AB)"``: a 1-based column as a spreadsheet shows it."""
    letters = ""
    rest = position
    while rest > 0:
        rest, digit = divmod(rest - 1, 26)
        letters = chr(ord("A") + digit) + letters
    return f"{position} ({letters})"


def tidy(
    frame: pl.DataFrame, names: list[str], *, check_first: bool = False, empty_is_null: bool = False
) -> pl.DataFrame:
    """Rename, cast to String, strip whitespace, empty → null (vectorised).

    ``check_first``: find the columns with a value that starts or ends with whitespace (or is
    empty, unless ``empty_is_null`` says the reader already made every empty cell null) and
    rewrite only those; most extracts have none, and rewriting every column is a large share
    of reading.
    """
    if frame.columns != names:
        frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    if check_first:
        frame = frame.with_columns(pl.col(name).cast(pl.String) for name in names)
        checks = [
            pl.col(name).str.strip_chars().str.len_bytes().sum()
            != pl.col(name).str.len_bytes().sum()
            for name in names
        ]
        if not empty_is_null:
            checks = [
                check | (pl.col(name).str.len_bytes().min() == 0)
                for check, name in zip(checks, names, strict=True)
            ]
        flags = frame.select(checks).row(0)
        names = [name for name, flag in zip(names, flags, strict=True) if flag]
        if not names:
            return frame
    stripped = [pl.col(name).cast(pl.String).str.strip_chars() for name in names]
    return frame.with_columns(
        pl.when(expr.str.len_bytes() > 0).then(expr).otherwise(None).alias(name)
        for expr, name in zip(stripped, names, strict=True)
    )


def require_rows(columns: list[str], batches: Iterator[pl.DataFrame]) -> Table:
    """Pull the first batch now so an upload without data rows is refused up front."""
    try:
        first = next(batches)
    except StopIteration:
        raise ReadError(
            "no_rows", "the file has a header but no data rows; nothing to upload"
        ) from None

    # chain drops its reference to the first batch once it is consumed (a closure yielding
    # it would keep it alive until the last batch)
    return Table(columns=columns, batches=itertools.chain([first], batches))


def read_at_least(source: Readable, size: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < size:
        chunk = source.read(size - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def describe_bytes(size: int) -> str:
    if size >= 1024**3 and size % 1024**3 == 0:
        return f"{size // 1024**3} GiB"
    if size >= 1024**2 and size % 1024**2 == 0:
        return f"{size // 1024**2} MiB"
    return f"{size:,} bytes"


class TextBudget:
    """The cell text an upload has decoded so far, refused once it passes ``limit``.

    Bounds what a few kilobytes can expand to through a value stored once and referenced from
    every row (a shared string, a Parquet dictionary entry): ``MAX_BATCH_TEXT`` bounds the
    memory that takes, this the time.
    """

    def __init__(self, limit: int, refusal: Callable[[int], ReadError]) -> None:
        self._limit = limit
        self._refusal = refusal
        self._spent = 0

    def spend(self, size: int) -> None:
        self._spent += size
        if self._spent > self._limit:
            raise self._refusal(self._limit)


def string_frame(names: list[str], columns: list[list[str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            name: pl.Series(name, values, dtype=pl.String)
            for name, values in zip(names, columns, strict=True)
        }
    )
