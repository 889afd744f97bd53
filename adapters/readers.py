"""Turn an uploaded file (CSV, Excel workbook or Parquet) into batches of all-string polars frames.

Agencies export from whatever their case-management system offers, so the reader copes with the
usual variety (encodings, delimiters, BOMs, quoted newlines, Excel cell types) and refuses
everything else with a message that says what is wrong and what to do. Those messages never
quote a cell: an officer may have put a name in the wrong column, and errors are shown, logged
and audited (DEVELOPERS.md, promise 1).

CSV is streamed from the request body with ``pyarrow.csv.open_csv`` so memory stays flat
whatever the file size; the source only needs a ``read()`` method (a pipe fed from an HTTP body
is not seekable). Workbooks and Parquet files need random access, so they are read from memory.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ACCEPTED_EXTENSIONS = (".csv", ".txt", ".tsv", ".xlsx", ".parquet")
_CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
_SNIFF_BYTES = 64 * 1024
_MAX_HEADER_BYTES = 1024 * 1024
_CSV_BLOCK_BYTES = 1024 * 1024  # larger blocks buy no speed and cost memory per batch
_DELIMITERS = (",", ";", "\t", "|")
_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls / .doc


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


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def normalise_header(name: str) -> str:
    """``" Date of Birth"`` → ``"date_of_birth"``: strip BOM/space, lower-case, spaces → _."""
    return "_".join(name.replace("\ufeff", "").strip().lower().split())


def _check_header(raw: list[str], max_columns: int) -> list[str]:
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
                f"column {position} has no name in the header row; "
                "give every column a name from the extract layout",
            )
    seen: set[str] = set()
    for name in names:
        # header names are layout names, not data, so they can be quoted back
        if name in seen:
            raise ReadError(
                "duplicate_header",
                f"the header names column {name!r} more than once; keep one of them",
            )
        seen.add(name)
    return names


def _tidy(frame: pl.DataFrame, names: list[str], *, empty_is_null: bool = False) -> pl.DataFrame:
    """Rename, cast to String, strip whitespace, empty → null (vectorised).

    ``empty_is_null``: the reader already turned empty cells into nulls (pyarrow's CSV
    ``null_values``), so only columns with a value that starts or ends with whitespace need
    stripping and re-checking; most extracts have none, and rewriting every column is a
    large share of reading.
    """
    frame = frame.rename(dict(zip(frame.columns, names, strict=True)))
    if empty_is_null:
        frame = frame.with_columns(pl.col(name).cast(pl.String) for name in names)
        padded = frame.select(
            (
                pl.col(name).str.strip_chars().str.len_bytes().sum()
                != pl.col(name).str.len_bytes().sum()
            )
            for name in names
        ).row(0)
        names = [name for name, flag in zip(names, padded, strict=True) if flag]
        if not names:
            return frame
    stripped = [pl.col(name).cast(pl.String).str.strip_chars() for name in names]
    return frame.with_columns(
        pl.when(expr.str.len_bytes() > 0).then(expr).otherwise(None).alias(name)
        for expr, name in zip(stripped, names, strict=True)
    )


def _rebatch(frames: Iterable[pl.DataFrame], batch_rows: int) -> Iterator[pl.DataFrame]:
    """Re-chunk frames of arbitrary size into frames of ``batch_rows`` rows (last may be short)."""
    pending: list[pl.DataFrame] = []
    size = 0
    for frame in frames:
        if frame.height == 0:
            continue
        pending.append(frame)
        size += frame.height
        while size >= batch_rows:
            whole = pl.concat(pending, rechunk=False) if len(pending) > 1 else pending[0]
            yield whole.slice(0, batch_rows).rechunk()
            rest = whole.slice(batch_rows)
            pending = [rest] if rest.height else []
            size = rest.height
    if size:
        yield (pl.concat(pending) if len(pending) > 1 else pending[0]).rechunk()


def _require_rows(columns: list[str], batches: Iterator[pl.DataFrame]) -> Table:
    """Pull the first batch now so an upload without data rows is refused up front."""
    try:
        first = next(batches)
    except StopIteration:
        raise ReadError(
            "no_rows", "the file has a header but no data rows; nothing to upload"
        ) from None

    def chained() -> Iterator[pl.DataFrame]:
        yield first
        yield from batches

    return Table(columns=columns, batches=chained())


# --------------------------------------------------------------------------------------- CSV


class _ReplayStream(io.RawIOBase):
    """A raw stream that yields the already-sniffed prefix, then the rest of the source."""

    def __init__(self, source: _Readable, prefix: bytes) -> None:
        super().__init__()
        self._source = source
        self._prefix = memoryview(prefix)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if len(self._prefix):
            count = min(len(view), len(self._prefix))
            view[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        data = self._source.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_at_least(source: _Readable, size: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while total < size:
        chunk = source.read(size - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _detect_encoding(prefix: bytes, at_eof: bool) -> tuple[str, int]:
    """Return (python codec name, BOM length to skip)."""
    if prefix.startswith(codecs.BOM_UTF8):
        return "utf-8", len(codecs.BOM_UTF8)
    if prefix.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", 0  # the utf-16 codec consumes the BOM itself
    if b"\x00" in prefix:
        raise ReadError(
            "not_text",
            "the file is not a text CSV (it contains binary data); "
            "export the extract as CSV UTF-8, or upload the workbook as .xlsx",
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(prefix, final=at_eof)
        return "utf-8", 0
    except UnicodeDecodeError:
        pass
    try:
        prefix.decode("cp1252")
    except UnicodeDecodeError:
        raise ReadError(
            "bad_encoding",
            "the file is not valid UTF-8 or Windows-1252 text; export it as CSV UTF-8",
        ) from None
    return "cp1252", 0


def _looks_binary(text: str) -> bool:
    if not text:
        return False
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t\f")
    return control / len(text) > 0.05


def _first_line(text: str) -> str | None:
    """The header line (quote-aware), or None if it is not complete within ``text``."""
    in_quotes = False
    for index, ch in enumerate(text):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch in "\r\n" and not in_quotes:
            return text[:index]
    return None


def _detect_delimiter(header: str) -> str:
    counts: dict[str, int] = dict.fromkeys(_DELIMITERS, 0)
    in_quotes = False
    for ch in header:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in counts:
            counts[ch] += 1
    best = max(_DELIMITERS, key=lambda d: counts[d])  # ties → earliest (comma first)
    return best if counts[best] else ","


def _open_csv(source: _Readable, *, prefix: bytes, batch_rows: int, max_columns: int) -> Table:
    prefix += _read_at_least(source, _SNIFF_BYTES - len(prefix))
    at_eof = len(prefix) < _SNIFF_BYTES
    if not prefix.strip(b" \t\r\n\xef\xbb\xbf\xff\xfe\x00"):
        raise ReadError("empty_file", "the file is empty; export the extract again")
    encoding, skip = _detect_encoding(prefix, at_eof)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(prefix[skip:], final=at_eof)
    if _looks_binary(text):
        raise ReadError(
            "not_text",
            "the file is not a text CSV (most of its start is not text); "
            "export the extract as CSV UTF-8",
        )
    header_line = _first_line(text)
    while header_line is None and not at_eof:
        # a very wide header: read on (bounded) until the first line ends
        if len(prefix) >= _MAX_HEADER_BYTES:
            raise ReadError(
                "too_many_columns",
                "the header row is longer than 1 MiB; check that the first row is the header",
            )
        more = _read_at_least(source, _SNIFF_BYTES)
        at_eof = len(more) < _SNIFF_BYTES
        prefix += more
        text += decoder.decode(more, final=at_eof)
        header_line = _first_line(text)
    if header_line is None:
        header_line = text
    delimiter = _detect_delimiter(header_line)
    raw_names = next(csv.reader([header_line], delimiter=delimiter))
    names = _check_header(raw_names, max_columns)
    if not any(names):
        raise ReadError("empty_file", "the file is empty; export the extract again")

    positional = [f"c{i}" for i in range(len(names))]
    bad_row: list[int | None] = []

    def on_invalid_row(row: Any) -> str:
        bad_row.append(row.number)
        return "error"

    stream = io.BufferedReader(_ReplayStream(source, prefix[skip:]), buffer_size=1 << 20)
    try:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=positional,  # the header comes through as data row 1; dropped below
                block_size=_CSV_BLOCK_BYTES,
                use_threads=False,  # required for row numbers in ragged-row errors
                encoding="utf8" if encoding == "utf-8" else encoding,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=True,
                invalid_row_handler=on_invalid_row,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(positional, pa.string()),
                # empty cells (quoted or not) arrive as nulls; whitespace-only ones are
                # stripped and nulled by _tidy
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as error:
        raise _csv_error(error, bad_row, len(names)) from None

    def frames() -> Iterator[pl.DataFrame]:
        first = True
        try:
            for record_batch in reader:
                frame = pl.from_arrow(record_batch)
                assert isinstance(frame, pl.DataFrame)
                if first:
                    frame = frame.slice(1)  # the header row
                    first = False
                yield _tidy(frame, names, empty_is_null=True)
        except pa.ArrowInvalid as error:
            raise _csv_error(error, bad_row, len(names)) from None

    return _require_rows(names, _rebatch(frames(), batch_rows))


def _csv_error(error: pa.ArrowInvalid, bad_row: list[int | None], width: int) -> ReadError:
    # pyarrow's own messages quote the offending row, so they are never passed on
    if bad_row:
        where = f"row {bad_row[0]}" if bad_row[0] is not None else "a row"
        return ReadError(
            "ragged_row",
            f"{where} does not have {width} cells like the header; check for unquoted "
            "delimiters or line breaks in that row and export again",
        )
    if "UTF8" in str(error) or "utf-8" in str(error).lower():
        return ReadError(
            "bad_encoding",
            "part of the file is not valid UTF-8 text; export it as CSV UTF-8",
        )
    return ReadError(
        "unreadable_csv", "the file could not be read as CSV; export it again as CSV UTF-8"
    )


# -------------------------------------------------------------------------------------- xlsx


def _cell_text(value: Any) -> str | None:
    """Excel cell → text the validators understand (dates ISO, whole numbers without .0)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.date().isoformat()
        return value.isoformat(timespec="seconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    return str(value)


def _open_xlsx(data: bytes, *, batch_rows: int, max_columns: int) -> Table:
    import openpyxl  # imported lazily: only workbook uploads need it

    try:
        # data_only=False: a formula cell reads as its "=..." text, so validation can flag it
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:
        raise ReadError(
            "unreadable_workbook",
            "the file could not be opened as an Excel .xlsx workbook; save it again as .xlsx "
            "(Excel Workbook) or export it as CSV UTF-8",
        ) from None
    if not workbook.worksheets:
        raise ReadError("empty_file", "the workbook has no worksheets")
    sheet = workbook.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header: list[Any] | None = None
    for row in rows:
        if any(cell is not None and str(cell).strip() for cell in row):
            header = list(row)
            break
    if header is None:
        raise ReadError("empty_file", "the first worksheet is empty; put the extract there")
    while header and (header[-1] is None or not str(header[-1]).strip()):
        header.pop()
    names = _check_header([_cell_text(cell) or "" for cell in header], max_columns)
    width = len(names)

    def frames() -> Iterator[pl.DataFrame]:
        columns: list[list[str | None]] = [[] for _ in range(width)]
        count = 0
        row_number = 1
        for row in rows:
            row_number += 1
            cells = [_cell_text(cell) for cell in row]
            if not any(cell is not None and cell.strip() for cell in cells):
                continue
            if len(cells) > width and any(c is not None and c.strip() for c in cells[width:]):
                raise ReadError(
                    "ragged_row",
                    f"row {row_number} has values beyond the last named column; "
                    "name every column in the header row or delete the extra cells",
                )
            for index in range(width):
                columns[index].append(cells[index] if index < len(cells) else None)
            count += 1
            if count == batch_rows:
                yield _tidy(_string_frame(names, columns), names)
                columns = [[] for _ in range(width)]
                count = 0
        if count:
            yield _tidy(_string_frame(names, columns), names)
        workbook.close()

    return _require_rows(names, frames())


def _string_frame(names: list[str], columns: list[list[str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            name: pl.Series(name, values, dtype=pl.String)
            for name, values in zip(names, columns, strict=True)
        }
    )


# ----------------------------------------------------------------------------------- parquet


def _parquet_column_text(column: pl.Series) -> pl.Expr:
    expr = pl.col(column.name)
    if column.dtype == pl.Datetime:
        return expr.dt.to_string("%Y-%m-%dT%H:%M:%S")
    if column.dtype == pl.Date:
        return expr.dt.to_string("%Y-%m-%d")
    if column.dtype.is_float():
        # whole numbers written as floats should still validate as integers
        return (
            pl.when(expr == expr.round(0))
            .then(expr.cast(pl.Int64, strict=False).cast(pl.String))
            .otherwise(expr.cast(pl.String))
        )
    if column.dtype.is_nested() or column.dtype in (pl.Binary, pl.Object):
        raise ReadError(
            "unsupported_column_type",
            f"column {column.name!r} is not plain text, number, date or boolean; "
            "write it as a string column",
        )
    return expr.cast(pl.String)


def _open_parquet(data: bytes, *, batch_rows: int, max_columns: int) -> Table:
    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
    except Exception:
        raise ReadError(
            "unreadable_parquet",
            "the file could not be read as Parquet; write it again or export it as CSV UTF-8",
        ) from None
    raw_names = list(parquet.schema_arrow.names)
    names = _check_header(raw_names, max_columns)

    def frames() -> Iterator[pl.DataFrame]:
        try:
            for record_batch in parquet.iter_batches(batch_size=batch_rows):
                frame = pl.from_arrow(record_batch)
                assert isinstance(frame, pl.DataFrame)
                texts = frame.select(
                    _parquet_column_text(frame.get_column(name)) for name in frame.columns
                )
                yield _tidy(texts, names)
        except ReadError:
            raise
        except Exception:
            raise ReadError(
                "unreadable_parquet",
                "part of the Parquet file could not be read; write it again",
            ) from None

    return _require_rows(names, frames())


# ---------------------------------------------------------------------------------- dispatch


def _extension(filename: str) -> str:
    name = filename.strip().lower()
    dot = name.rfind(".")
    return name[dot:] if dot >= 0 else ""


def _read_all(source: _Readable) -> bytes:
    chunks: list[bytes] = []
    while chunk := source.read(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


_Opener = Callable[..., Table]


def open_table(
    source: BinaryIO,
    filename: str,
    *,
    batch_rows: int = 16_384,
    max_columns: int = 1_000,
) -> Table:
    """Open an upload by its file name's extension, after checking the bytes agree with it.

    Raises ``ReadError`` for any file-level problem (format, encoding, header, ragged rows);
    ragged rows and encoding errors found later in a CSV are raised while iterating batches.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    extension = _extension(filename)
    if extension not in ACCEPTED_EXTENSIONS:
        raise ReadError(
            "unsupported_format",
            "the file type is not accepted; upload one of: " + ", ".join(ACCEPTED_EXTENSIONS),
        )
    magic = _read_at_least(source, 4)
    if not magic:
        raise ReadError("empty_file", "the file is empty; export the extract again")
    if extension in _CSV_EXTENSIONS:
        if magic.startswith(_ZIP_MAGIC):
            raise ReadError(
                "wrong_format",
                f"the file is named {extension} but is an Excel workbook or zip archive; "
                "upload it with its .xlsx name or save it as CSV UTF-8",
            )
        if magic.startswith(_PARQUET_MAGIC):
            raise ReadError(
                "wrong_format",
                f"the file is named {extension} but is a Parquet file; "
                "upload it with its .parquet name",
            )
        if magic.startswith(_OLE_MAGIC):
            raise ReadError(
                "wrong_format",
                f"the file is named {extension} but is an old-style Excel (.xls) file; "
                "save it as .xlsx or CSV UTF-8",
            )
        return _open_csv(source, prefix=magic, batch_rows=batch_rows, max_columns=max_columns)
    data = magic + _read_all(source)
    if extension == ".xlsx":
        if not magic.startswith(_ZIP_MAGIC):
            raise ReadError(
                "wrong_format",
                "the file is named .xlsx but is not an Excel workbook; "
                "save it as .xlsx (Excel Workbook) or export it as CSV UTF-8",
            )
        return _open_xlsx(data, batch_rows=batch_rows, max_columns=max_columns)
    if not magic.startswith(_PARQUET_MAGIC):
        raise ReadError(
            "wrong_format",
            "the file is named .parquet but is not a Parquet file; write it again as Parquet",
        )
    return _open_parquet(data, batch_rows=batch_rows, max_columns=max_columns)
