"""Turn an uploaded file (CSV, Excel workbook or Parquet) into batches of all-string polars frames.

Agencies export from whatever their case-management system offers, so the reader copes with the
usual variety (encodings, delimiters, BOMs, quoted newlines, Excel cell types) and refuses
everything else with a message that says what is wrong and what to do. Those messages never
quote a cell: an officer may have put a name in the wrong column, and errors are shown, logged
and audited (DEVELOPERS.md, promise 1).

CSV is streamed from the request body, one batch of records at a time, and parsed by polars,
so memory stays flat whatever the file size; the source only needs a ``read()`` method (a pipe
fed from an HTTP body is not seekable). Workbooks and Parquet files need random access, so they
are read from memory, and both are compressed: a small upload can unpack to gigabytes. Each is
checked before it is decoded and refused (``workbook_too_large``, ``parquet_too_large``) when it
would unpack to more than a real extract does; what is decoded comes out in batches bounded in
rows and in text. pyarrow is imported only to read Parquet: it alone costs a hub ~80 MB of
memory, which CSV and workbook uploads never pay.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import itertools
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

ACCEPTED_EXTENSIONS = (".csv", ".txt", ".tsv", ".xlsx", ".parquet")
_CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
_SNIFF_BYTES = 64 * 1024
_MAX_HEADER_BYTES = 1024 * 1024
_CSV_READ_BYTES = 1024 * 1024  # asked of the source per read
_MAX_RECORD_BYTES = 16 * 1024 * 1024  # one CSV record (a quote never closed reads on)
_DELIMITERS = (",", ";", "\t", "|")
_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls / .doc

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
_MAX_BATCH_TEXT = 32 * 1024**2


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


def _tidy(
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


def _require_rows(columns: list[str], batches: Iterator[pl.DataFrame]) -> Table:
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


# --------------------------------------------------------------------------------------- CSV


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


def _bad_utf8() -> ReadError:
    return ReadError(
        "bad_encoding", "part of the file is not valid UTF-8 text; export it as CSV UTF-8"
    )


def _utf8_chunks(source: _Readable, first: bytes, encoding: str) -> Iterator[bytes]:
    """The rest of the file as UTF-8 bytes, in chunks of about ``_CSV_READ_BYTES``.

    UTF-8 passes through untouched (the parser checks it); other encodings are transcoded here,
    so record boundaries can be found on bytes and polars parses only UTF-8.
    """
    if encoding == "utf-8":
        if first:
            yield first
        while chunk := source.read(_CSV_READ_BYTES):
            yield chunk
        return
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        text = decoder.decode(first)
        while chunk := source.read(_CSV_READ_BYTES):
            text += decoder.decode(chunk)
            yield text.encode("utf-8")
            text = ""
        text += decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ReadError(
            "bad_encoding",
            f"part of the file is not valid {_ENCODING_NAMES.get(encoding, encoding)} text; "
            "export it as CSV UTF-8",
        ) from None
    if text:
        yield text.encode("utf-8")


_ENCODING_NAMES = {"cp1252": "Windows-1252", "utf-16": "UTF-16"}


@dataclass(slots=True)
class _Block:
    """Where the records of a byte buffer end, found without parsing the cells.

    A line break ends a record iff an even number of ``"`` precede it (RFC 4180: quotes open
    and close cells, and a quote inside a quoted cell is doubled, so pairs never change the
    parity). That holds only if every quote sits where RFC 4180 allows one; ``_scan`` returns
    None otherwise and the caller reads with the slower, lenient parser.
    """

    ends: npt.NDArray[np.intp]  # offsets of the line breaks that end non-blank records
    blanks: npt.NDArray[np.intp]  # (start, end) offsets of blank lines, one pair a row


def _quotes_are_strict(data: npt.NDArray[np.uint8], quotes: npt.NDArray[np.intp], sep: int) -> bool:
    """Every opening quote starts a cell and every closing quote ends one (or is doubled)."""
    opening = quotes[0::2]
    closing = quotes[1::2]
    last = len(data) - 1
    before = data[np.maximum(opening - 1, 0)]
    opens_cell = (opening == 0) | (before == sep) | (before == 10) | (before == 34)
    after = data[np.minimum(closing + 1, last)]
    closes_cell = (closing == last) | (after == sep) | (after == 10) | (after == 13) | (after == 34)
    return bool(opens_cell.all() and closes_cell.all())


_NO_BLANKS = np.empty((0, 2), dtype=np.intp)


def _scan(data: bytes, sep: int) -> _Block | None:
    """Record ends in ``data`` (which starts at a record boundary), or None if it needs the
    lenient parser: a quote inside an unquoted cell, or a bare carriage return.

    numpy throughout: Python's ``bytes.count`` and multi-byte ``in`` run at ~1-2 GB/s, several
    times slower than these vectorised scans.
    """
    array = np.frombuffer(data, dtype=np.uint8)
    if b"\r" in data:
        returns = array == 13
        if np.count_nonzero(returns) != np.count_nonzero(returns[:-1] & (array[1:] == 10)):
            return None  # old Mac line ends, or a CR inside a cell: rare enough to read slowly
    breaks = np.flatnonzero(array == 10)
    if b'"' in data:
        quotes = np.flatnonzero(array == 34)
        if not _quotes_are_strict(array, quotes, sep):
            return None
        breaks = breaks[np.searchsorted(quotes, breaks) % 2 == 0]
    starts = np.empty_like(breaks)
    starts[:1] = 0
    starts[1:] = breaks[:-1] + 1
    lengths = breaks - starts
    blank = (lengths == 0) | ((lengths == 1) & (array[np.maximum(breaks - 1, 0)] == 13))
    if not blank.any():
        return _Block(ends=breaks, blanks=_NO_BLANKS)
    return _Block(ends=breaks[~blank], blanks=np.stack([starts[blank], breaks[blank]], axis=1))


def _line_breaks(data: bytes) -> int:
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == 10))


def _without_blank_lines(data: bytes, blanks: npt.NDArray[np.intp]) -> bytes:
    # polars turns a blank line into a row of nulls (and skips leading ones); spreadsheets
    # and the row numbers users are given skip them. Rare, so a plain rebuild is fine.
    pieces: list[bytes] = []
    position = 0
    for start, end in blanks.tolist():
        pieces.append(data[position:start])
        position = end + 1
    pieces.append(data[position:])
    return b"".join(pieces)


def _delimiters_outside_quotes(data: bytes, sep: int) -> int:
    array = np.frombuffer(data, dtype=np.uint8)
    total = int(np.count_nonzero(array == sep))
    if b'"' not in data:
        return total
    quotes = np.flatnonzero(array == 34)
    seps = np.flatnonzero(array == sep)
    inside = np.searchsorted(seps, quotes[1::2]) - np.searchsorted(seps, quotes[0::2])
    return total - int(inside.sum())


class _ChunkStream(io.RawIOBase):
    """A raw stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._pending):
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        view = memoryview(buffer).cast("B")
        count = min(len(view), len(self._pending))
        view[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def _ragged(row: int, width: int) -> ReadError:
    return ReadError(
        "ragged_row",
        f"row {row} does not have {width} cells like the header; check for unquoted "
        "delimiters or line breaks in that row and export again",
    )


class _CsvReader:
    """Batches of ``batch_rows`` records from UTF-8 chunks that start with the header record.

    The fast path cuts the byte stream at record ends (``_scan``) and lets polars parse each
    batch's bytes; memory holds one batch's bytes and frame whatever the file size. A batch
    that the fast path cannot vouch for (a quote inside an unquoted cell, a bare CR, a row
    with the wrong number of cells, invalid UTF-8) is read from there on by Python's ``csv``
    module, which is slower but lenient like spreadsheets and names the bad row exactly.
    """

    def __init__(self, chunks: Iterator[bytes], names: list[str], delimiter: str, batch_rows: int):
        self._chunks = chunks
        self._names = names
        self._delimiter = delimiter
        self._sep = ord(delimiter)
        self._batch_rows = batch_rows
        self._schema = dict.fromkeys(names, pl.String)
        self._row = 0  # spreadsheet row of the last record read (the header is row 1)

    def frames(self) -> Iterator[pl.DataFrame]:
        pending: list[bytes] = []  # unparsed bytes, starting at a record boundary
        size = breaks = 0  # bytes and line breaks in pending
        eof = False
        while True:
            want = self._batch_rows + (self._row == 0)  # the first batch also holds the header
            need_bytes = 0
            while True:
                while not eof and (breaks < want or size < need_bytes):
                    chunk = next(self._chunks, b"")
                    if not chunk:
                        eof = True
                        break
                    pending.append(chunk)
                    size += len(chunk)
                    breaks += _line_breaks(chunk)
                data = b"".join(pending) if len(pending) != 1 else pending[0]
                if eof and data and not data.endswith(b"\n"):
                    data += b"\n"
                pending = [data]
                block = _scan(data, self._sep)
                if block is None:
                    yield from self._lenient(data)
                    return
                found = len(block.ends)
                if found >= want or eof:
                    break
                # bytes after the last record end: a quote never closed makes the rest of the
                # file one record, which must not all be read into memory
                unended = size - (int(block.ends[-1]) + 1 if found else 0)
                if unended > _MAX_RECORD_BYTES:
                    raise ReadError(
                        "unreadable_csv",
                        f"row {self._row + found + 1} is longer than "
                        f"{_MAX_RECORD_BYTES >> 20} MiB; check it for a double quote that is "
                        "never closed and export again",
                    )
                # quoted line breaks or blank lines: read about as much again as is missing,
                # but never so much that the check above could be skipped past
                estimate = (want - found) * (size // max(found, 1)) + _CSV_READ_BYTES
                need_bytes = size + min(estimate, _MAX_RECORD_BYTES)
            if not found:
                if data.strip(b"\r\n"):
                    # an unfinished quoted cell at the end of the file: let the lenient
                    # reader decide what it is
                    yield from self._lenient(data)
                return
            count = min(found, want)
            cut = int(block.ends[count - 1]) + 1
            body = data[:cut] if cut < len(data) else data
            rest = data[cut:]
            blanks = block.blanks[block.blanks[:, 1] < cut]
            del data, block  # only one copy of the bytes while polars parses
            pending = [rest] if rest else []
            size, breaks = len(rest), _line_breaks(rest)
            frame = self._parse(body, count, blanks)
            if frame is None:
                yield from self._lenient(body + rest)
                return
            del body, rest, blanks  # not kept while the consumer works
            if frame.height:
                yield frame
            del frame  # nor the frame, once the consumer has moved on
            if eof and not pending:
                return

    def _parse(
        self, body: bytes, records: int, blanks: npt.NDArray[np.intp]
    ) -> pl.DataFrame | None:
        """The records of ``body`` as a tidy frame, or None when the lenient reader must."""
        if len(blanks):
            body = _without_blank_lines(body, blanks)
        if _delimiters_outside_quotes(body, self._sep) != records * (len(self._names) - 1):
            return None  # a row with too few or too many cells
        try:
            frame = pl.read_csv(
                body,
                has_header=False,
                schema=self._schema,
                separator=self._delimiter,
                quote_char='"',
                n_threads=1,  # the ingest pipeline already keeps both cores busy
                raise_if_empty=False,
                rechunk=True,
            )
        except pl.exceptions.PolarsError:
            return None  # e.g. invalid UTF-8
        if frame.height != records:
            return None
        if self._row == 0:
            frame = frame.slice(1)  # the header row
        self._row += records
        # polars reads an unquoted empty cell as null but a quoted one ("") as ""
        return _tidy(frame, self._names, check_first=True, empty_is_null=b'"' not in body)

    def _lenient(self, data: bytes) -> Iterator[pl.DataFrame]:
        """The rest of the file, from ``data`` (which starts at a record), via ``csv``."""
        stream = io.BufferedReader(_ChunkStream(itertools.chain([data], self._chunks)))
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        width = len(self._names)
        rows = csv.reader(text, delimiter=self._delimiter, quotechar='"', doublequote=True)
        columns: list[list[str | None]] = [[] for _ in range(width)]
        count = 0
        try:
            for cells in rows:
                if not cells:
                    continue  # a blank line
                self._row += 1
                if self._row == 1:
                    continue  # the header row
                if len(cells) != width:
                    raise _ragged(self._row, width)
                for column, cell in zip(columns, cells, strict=True):
                    column.append(cell)
                count += 1
                if count == self._batch_rows:
                    yield _tidy(_string_frame(self._names, columns), self._names)
                    columns = [[] for _ in range(width)]
                    count = 0
        except UnicodeDecodeError:
            raise _bad_utf8() from None
        except csv.Error:
            raise ReadError(
                "unreadable_csv",
                f"row {self._row + 1} could not be read as CSV (a cell may be too long or a "
                "quote never closed); export the extract again as CSV UTF-8",
            ) from None
        if count:
            yield _tidy(_string_frame(self._names, columns), self._names)


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
    # the header comes through as the first record and is dropped there
    reader = _CsvReader(_utf8_chunks(source, prefix[skip:], encoding), names, delimiter, batch_rows)
    return _require_rows(names, reader.frames())


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


# Workbook limits, checked against the zip directory before openpyxl inflates any of it.
# zipfile never inflates an entry past the size the directory declares (it stops there and the
# CRC check fails), so declared sizes are upper bounds that can be trusted.
_ZIP_DIRECTORY_ENTRY = b"PK\x01\x02"
_MAX_WORKBOOK_ENTRIES = 10_000  # Excel writes a few dozen parts; zipfile keeps ~0.5 KB a part
# Sheet XML deflates 10-16:1 (measured on openpyxl's output, identical rows included); 100:1 is
# Apache POI's zip-bomb threshold. Small parts (styles, themes) may compress better harmlessly.
_MAX_COMPRESSION_RATIO = 100
_RATIO_CHECKED_ABOVE = 16 * 1024**2
# openpyxl streams the worksheets but reads every other part whole: the shared strings become
# one list of str (~2.5x their XML), styles and relationships a tree. 256 MiB of shared strings
# is ~8 million distinct cell values, more than a full sheet of names and references holds.
_MAX_WHOLE_PART_BYTES = 256 * 1024**2
# Excel's own limit. openpyxl fills a gap in row numbers one empty row at a time (a row numbered
# 10**12 would take hours to reach) and keeps a little of every row it reads.
_MAX_SHEET_ROWS = 1_048_576


def _describe_bytes(size: int) -> str:
    if size >= 1024**3 and size % 1024**3 == 0:
        return f"{size // 1024**3} GiB"
    if size >= 1024**2 and size % 1024**2 == 0:
        return f"{size // 1024**2} MiB"
    return f"{size:,} bytes"


def _workbook_too_large(problem: str, advice: str = "export the extract as CSV UTF-8") -> ReadError:
    return ReadError("workbook_too_large", f"{problem}; {advice}")


def _unreadable_workbook(what: str = "the file could not be opened") -> ReadError:
    return ReadError(
        "unreadable_workbook",
        f"{what} as an Excel .xlsx workbook; save it again as .xlsx (Excel Workbook) "
        "or export it as CSV UTF-8",
    )


def _is_worksheet(name: str) -> bool:
    name = name.lower()
    return name.startswith("xl/worksheets/") and name.endswith(".xml")


def _check_workbook_archive(data: bytes, max_unpacked_bytes: int) -> None:
    """Refuse a workbook that unpacks to more than any real extract (see the limits above)."""
    # zipfile makes an object for every directory entry as it opens an archive, and every
    # entry it accepts starts with this signature: counting them needs no trust in the file
    if data.count(_ZIP_DIRECTORY_ENTRY) > _MAX_WORKBOOK_ENTRIES:
        raise _workbook_too_large(
            f"the workbook has more than {_MAX_WORKBOOK_ENTRIES:,} parts, far more than Excel "
            "writes",
            "save the extract sheet as a new workbook, or export it as CSV UTF-8",
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except Exception:
        raise _unreadable_workbook() from None
    total = 0
    for entry in entries:
        size = entry.file_size
        total += size
        if size > _RATIO_CHECKED_ABOVE and size > _MAX_COMPRESSION_RATIO * entry.compress_size:
            raise _workbook_too_large(
                f"part of the workbook is compressed more than {_MAX_COMPRESSION_RATIO} to 1, "
                "which real workbooks never are (it may be padded to exhaust memory)",
                "save the extract again from Excel as a new workbook, or export it as CSV UTF-8",
            )
        if size > _MAX_WHOLE_PART_BYTES and not _is_worksheet(entry.filename):
            raise _workbook_too_large(
                "a part of the workbook other than its worksheets (such as the table of text "
                f"its cells share) unpacks to more than {_describe_bytes(_MAX_WHOLE_PART_BYTES)}"
            )
    if total > max_unpacked_bytes:
        raise _workbook_too_large(
            f"the workbook unpacks to more than {_describe_bytes(max_unpacked_bytes)}",
            "split the extract into smaller uploads, or export it as CSV UTF-8",
        )


class _TextBudget:
    """The cell text an upload has decoded so far, refused once it passes ``limit``.

    Bounds what a few kilobytes can expand to through a value stored once and referenced from
    every row (a shared string, a Parquet dictionary entry): ``_MAX_BATCH_TEXT`` bounds the
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


def _workbook_text_refusal(limit: int) -> ReadError:
    return _workbook_too_large(
        f"the workbook's cells hold more than {_describe_bytes(limit)} of text",
        "split the extract into smaller uploads, or export it as CSV UTF-8",
    )


def _sheet_rows(sheet: Any) -> Iterator[tuple[Any, ...]]:
    """The worksheet's rows as values, refused past Excel's row limit.

    openpyxl's own errors are replaced: they can quote a cell (``could not convert string to
    float: '...'``).
    """
    try:
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            if number > _MAX_SHEET_ROWS:
                raise _workbook_too_large(
                    f"the first worksheet has more than {_MAX_SHEET_ROWS:,} rows, more than "
                    "Excel allows",
                    "save the extract again from Excel, or export it as CSV UTF-8",
                )
            yield row
    except ReadError:
        raise
    except Exception:
        raise _unreadable_workbook("part of the first worksheet could not be read") from None


def _open_xlsx(data: bytes, *, batch_rows: int, max_columns: int, max_unpacked_bytes: int) -> Table:
    import openpyxl  # imported lazily: only workbook uploads need it

    _check_workbook_archive(data, max_unpacked_bytes)
    try:
        # data_only=False: a formula cell reads as its "=..." text, so validation can flag it
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:
        raise _unreadable_workbook() from None
    if not workbook.worksheets:
        raise ReadError("empty_file", "the workbook has no worksheets")
    rows = _sheet_rows(workbook.worksheets[0])
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
        budget = _TextBudget(max_unpacked_bytes, _workbook_text_refusal)
        columns: list[list[str | None]] = [[] for _ in range(width)]
        count = text = 0
        row_number = 1
        try:
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
                size = 0
                for index in range(width):
                    cell = cells[index] if index < len(cells) else None
                    columns[index].append(cell)
                    size += len(cell) if cell is not None else 0
                budget.spend(size)
                text += size
                count += 1
                if count == batch_rows or text >= _MAX_BATCH_TEXT:
                    yield _tidy(_string_frame(names, columns), names)
                    columns = [[] for _ in range(width)]
                    count = text = 0
            if count:
                yield _tidy(_string_frame(names, columns), names)
        finally:
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


# pyarrow streams batch_rows rows at a time whatever the row-group size (polars decodes a whole
# row group: 20 million identical rows took 2.5 GB), but it inflates a whole page at once, one
# page per column plus the column's dictionary page. Writers cut pages at ~1 MiB (pyarrow,
# polars, Spark, DuckDB), so a 40-column extract holds ~40 MiB of pages; zstd packs a page of
# a gigabyte of one repeated value into kilobytes. Page sizes are read from the page headers,
# which pyarrow allocates by, not from the footer's totals, which nothing checks.
_MAX_PARQUET_PAGE_BYTES = 256 * 1024**2  # pages held at once: a row group's columns together
_MAX_PARQUET_PAGES = 1_000_000  # honest files have thousands; each header costs microseconds
_MAX_PAGE_HEADER_BYTES = 16 * 1024**2  # pyarrow's own limit on a page header
_DICTIONARY_PAGE = 2  # Parquet's PageType.DICTIONARY_PAGE


class _BadThrift(Exception):
    """A page header that is not Thrift compact protocol (a damaged file)."""


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 64:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7
    raise _BadThrift


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _skip_thrift(data: bytes, position: int, kind: int, limit: int, depth: int) -> int:
    """The position after a compact-protocol value of type ``kind`` (a list's booleans are a
    byte each; a field's are in its header, so ``kind`` 1 and 2 are never skipped here)."""
    if depth > 16 or position > limit:
        raise _BadThrift
    if kind in (1, 2, 3):
        return position + 1
    if kind in (4, 5, 6):
        return _varint(data, position)[1]
    if kind == 7:
        return position + 8
    if kind == 8:
        length, position = _varint(data, position)
        return position + length
    if kind in (9, 10):  # list, set: size and element type in one byte, or a varint after it
        header = data[position]
        position += 1
        size, element = header >> 4, header & 0x0F
        if size == 15:
            size, position = _varint(data, position)
        if size > limit - position:  # every element takes at least a byte
            raise _BadThrift
        for _ in range(size):
            position = _skip_thrift(data, position, element, limit, depth + 1)
        return position
    if kind == 11:  # map
        size, position = _varint(data, position)
        if not size:
            return position
        if size > limit - position:
            raise _BadThrift
        types = data[position]
        position += 1
        for _ in range(size):
            position = _skip_thrift(data, position, types >> 4, limit, depth + 1)
            position = _skip_thrift(data, position, types & 0x0F, limit, depth + 1)
        return position
    if kind == 12:
        return _thrift_struct(data, position, limit, depth + 1, {})[1]
    raise _BadThrift


def _thrift_struct(
    data: bytes, position: int, limit: int, depth: int, wanted: dict[int, int]
) -> tuple[dict[int, int], int]:
    """Read a struct; return the values of its i32 fields whose ids are in ``wanted`` (which
    is filled in) and the position after it."""
    field = 0
    while True:
        if position > limit:
            raise _BadThrift
        byte = data[position]
        position += 1
        kind = byte & 0x0F
        if kind == 0:
            return wanted, position
        if byte >> 4:
            field += byte >> 4
        else:
            raw, position = _varint(data, position)
            field = _zigzag(raw)
        if kind == 5 and field in wanted:
            raw, position = _varint(data, position)
            wanted[field] = _zigzag(raw)
        elif kind not in (1, 2):  # a boolean field's value is its type
            position = _skip_thrift(data, position, kind, limit, depth)


def _page_header(data: bytes, position: int) -> tuple[int, int, int, int]:
    """(page type, uncompressed size, compressed size, position after the header) of the
    Parquet page header at ``position``."""
    limit = min(len(data), position + _MAX_PAGE_HEADER_BYTES)
    fields, position = _thrift_struct(data, position, limit, 0, {1: -1, 2: -1, 3: -1})
    kind, uncompressed, compressed = fields[1], fields[2], fields[3]
    if kind < 0 or uncompressed < 0 or compressed < 0 or position > limit:
        raise _BadThrift
    return kind, uncompressed, compressed, position


def _check_parquet_pages(data: bytes, metadata: Any) -> None:
    """Refuse a file whose pages would inflate to more than the limits above allow."""
    pages = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        held = 0
        for column in range(row_group.num_columns):
            chunk = row_group.column(column)
            # where pyarrow starts reading a column chunk (the dictionary page comes first)
            position = chunk.data_page_offset
            if chunk.has_dictionary_page and 0 < (chunk.dictionary_page_offset or 0) < position:
                position = chunk.dictionary_page_offset
            if position < 0:
                raise _BadThrift
            end = min(position + chunk.total_compressed_size, len(data))
            dictionary = largest = 0
            while position < end:
                kind, size, compressed, position = _page_header(data, position)
                position += compressed
                pages += 1
                if kind == _DICTIONARY_PAGE:
                    dictionary = max(dictionary, size)
                else:
                    largest = max(largest, size)
            if pages > _MAX_PARQUET_PAGES:
                raise _parquet_too_large(
                    f"has more than {_MAX_PARQUET_PAGES:,} pages, far more than writers make"
                )
            held += dictionary + largest
        if held > _MAX_PARQUET_PAGE_BYTES:
            raise _parquet_too_large(
                f"has pages that inflate to more than {_describe_bytes(_MAX_PARQUET_PAGE_BYTES)} "
                "at once"
            )


def _parquet_too_large(problem: str) -> ReadError:
    return ReadError(
        "parquet_too_large",
        f"the Parquet file {problem}; write it again with the writer's default page and "
        "row-group sizes (pyarrow, polars), or export the extract as CSV UTF-8",
    )


def _parquet_text_refusal(limit: int) -> ReadError:
    return ReadError(
        "parquet_too_large",
        f"the Parquet file holds more than {_describe_bytes(limit)} of text; split the "
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
    return max(1, min(batch_rows, _MAX_BATCH_TEXT // max(widest, 1)))


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


def _text_bytes(batch: Any) -> int:
    import pyarrow.compute as pc

    return sum(
        pc.sum(pc.binary_length(column)).as_py() or 0
        for column in batch.columns
        if _is_text(column.type)
    )


def _open_parquet(
    data: bytes, *, batch_rows: int, max_columns: int, max_unpacked_bytes: int
) -> Table:
    # imported here: pyarrow alone costs ~80 MB, which only Parquet uploads should pay
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        arrow_schema = parquet.schema_arrow
    except Exception:
        raise _unreadable_parquet() from None
    names = _check_header(list(arrow_schema.names), max_columns)
    texts = _parquet_texts(arrow_schema)
    text_columns = [field.name for field in arrow_schema if _is_text(field.type)]
    try:
        _check_parquet_pages(data, parquet.metadata)
        probe = pq.ParquetFile(pa.BufferReader(data), read_dictionary=text_columns)
    except ReadError:
        raise
    except Exception:  # a damaged page header (_BadThrift, IndexError) or footer
        raise _unreadable_parquet() from None

    def frames() -> Iterator[pl.DataFrame]:
        budget = _TextBudget(max_unpacked_bytes, _parquet_text_refusal)
        try:
            # streamed: memory holds a batch and a page per column, whatever the row groups
            for group in range(parquet.metadata.num_row_groups):
                rows = _parquet_batch_rows(probe, group, text_columns, batch_rows)
                for batch in parquet.iter_batches(
                    batch_size=rows, row_groups=[group], use_threads=False
                ):
                    batch = _decoded(batch)
                    budget.spend(_text_bytes(batch))
                    frame = pl.from_arrow(batch)
                    assert isinstance(frame, pl.DataFrame)  # a record batch converts to a frame
                    if frame.height:
                        yield _tidy(frame.select(texts), names)
        except ReadError:
            raise
        except Exception:
            raise _unreadable_parquet("part of the file could not be read") from None

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
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
) -> Table:
    """Open an upload by its file name's extension, after checking the bytes agree with it.

    Raises ``ReadError`` for any file-level problem (format, encoding, header, ragged rows);
    ragged rows and encoding errors found later in a CSV are raised while iterating batches,
    as is a workbook or Parquet file whose cells decode to more than ``max_unpacked_bytes``
    of text (a workbook whose parts unpack to more is refused up front). A CSV is not
    compressed, so the limit does not apply to it.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be positive")
    if max_unpacked_bytes < 1:
        raise ValueError("max_unpacked_bytes must be positive")
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
        return _open_xlsx(
            data,
            batch_rows=batch_rows,
            max_columns=max_columns,
            max_unpacked_bytes=max_unpacked_bytes,
        )
    if not magic.startswith(_PARQUET_MAGIC):
        raise ReadError(
            "wrong_format",
            "the file is named .parquet but is not a Parquet file; write it again as Parquet",
        )
    return _open_parquet(
        data, batch_rows=batch_rows, max_columns=max_columns, max_unpacked_bytes=max_unpacked_bytes
    )
