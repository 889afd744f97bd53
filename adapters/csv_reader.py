"""Read a CSV upload as it streams in, one batch of records at a time.

The source only needs a ``read()`` method (a pipe fed from an HTTP body is not seekable), so
memory stays flat whatever the file size. The start of the file is sniffed for its encoding and
delimiter; polars parses each batch's bytes, and Python's ``csv`` module takes over from any
batch polars cannot be trusted with (see ``_CsvReader``).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from adapters.tables import (
    Readable,
    ReadError,
    Table,
    check_header,
    read_at_least,
    require_rows,
    string_frame,
    tidy,
)

_SNIFF_BYTES = 64 * 1024
_MAX_HEADER_BYTES = 1024 * 1024
_CSV_READ_BYTES = 1024 * 1024  # asked of the source per read
_MAX_RECORD_BYTES = 16 * 1024 * 1024  # one CSV record (a quote never closed reads on)
_DELIMITERS = (",", ";", "\t", "|")
# Excel's delimiter hint: a first line such as "sep=;". Excel reads the file with that delimiter
# and does not show the line, so the header is still the row users see as row 1.
_DELIMITER_HINT = re.compile(r"sep=([,;\t|])(?:\r\n|\n|\r)")


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


def _delimiter_hint(text: str) -> tuple[str, int] | None:
    """(delimiter, length of the line with its line end) when ``text`` starts with Excel's
    ``sep=`` line, else None."""
    hint = _DELIMITER_HINT.match(text)
    return (hint.group(1), hint.end()) if hint else None


def _skip_bytes(chunks: Iterator[bytes], count: int) -> Iterator[bytes]:
    """``chunks`` without their first ``count`` bytes."""
    for chunk in chunks:
        if count >= len(chunk):
            count -= len(chunk)
            continue
        yield chunk[count:]
        count = 0


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


def _utf8_chunks(source: Readable, first: bytes, encoding: str) -> Iterator[bytes]:
    """The rest of the file as UTF-8 bytes, in chunks of about ``_CSV_READ_BYTES``.

    UTF-8 passes through untouched (the parser checks it); other encodings are transcoded here,
    so record boundaries can be found on bytes and polars parses only UTF-8.

    A start that is plain ASCII reads as UTF-8, but the file may be Windows-1252 with its first
    accented letter further on: the first chunk that is not ASCII decides, and if it is not
    UTF-8 the rest is transcoded from Windows-1252 (the two agree on everything before it).
    """
    if encoding != "utf-8":
        yield from _transcoded(source, first, encoding)
        return
    if first:
        yield first
    undecided = first.isascii()
    while chunk := source.read(_CSV_READ_BYTES):
        if undecided and not chunk.isascii():
            undecided = False
            if not _starts_as_utf8(chunk):
                yield from _transcoded(source, chunk, "cp1252", "UTF-8 or Windows-1252")
                return
        yield chunk


def _starts_as_utf8(chunk: bytes) -> bool:
    """Whether ``chunk`` is UTF-8 (a character cut at its end allowed)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(chunk, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _transcoded(
    source: Readable, first: bytes, encoding: str, named: str | None = None
) -> Iterator[bytes]:
    """``first`` and the rest of ``source``, decoded from ``encoding``, as UTF-8 chunks
    (``named``: how a refusal names the encodings tried)."""
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
            f"part of the file is not valid {named or _ENCODING_NAMES.get(encoding, encoding)} "
            "text; export it as CSV UTF-8",
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


# Lead bytes of UTF-8 characters that may be whitespace (U+0085, U+00A0, U+1680, U+2000-U+3000).
_SPACE_LEADS = np.array([0xC2, 0xE1, 0xE2, 0xE3], dtype=np.uint8)


def _may_have_padded_cells(body: bytes, sep: int) -> bool:
    """False when no cell of ``body`` (unquoted records, each ended by a line break) starts or
    ends with whitespace, so there is nothing to tidy. True means "maybe".

    Two scans of the bytes find every space or control character and every non-ASCII byte;
    only those next to a delimiter or a line end are looked at. That is ~4x cheaper than
    asking polars whether any cell strips to something else, which made a copy of every cell.
    """
    array = np.frombuffer(body, dtype=np.uint8)
    last = len(array) - 1

    def at_cell_start(positions: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        before = array[np.maximum(positions - 1, 0)]
        starts: npt.NDArray[np.bool_] = (positions == 0) | (before == sep) | (before == 10)
        return starts

    def at_cell_end(positions: npt.NDArray[np.intp]) -> npt.NDArray[np.bool_]:
        after = array[np.minimum(positions + 1, last)]
        ends: npt.NDArray[np.bool_] = (
            (positions == last) | (after == sep) | (after == 10) | (after == 13)
        )
        return ends

    low = np.flatnonzero(array < 33)
    values = array[low]
    low = low[(values != 10) & (values != 13)]  # spaces, tabs and other control characters
    if len(low) and (at_cell_start(low).any() or at_cell_end(low).any()):
        return True
    high = np.flatnonzero(array >= 0x80)
    if not len(high):
        return False
    # Non-ASCII: decode just the character at a cell's edge (most are letters such as é).
    starts = high[at_cell_start(high) & np.isin(array[high], _SPACE_LEADS)]
    if any(body[start : start + 3].decode("utf-8", "ignore")[:1].isspace() for start in starts):
        return True
    ends = high[at_cell_end(high)]
    return any(
        body[max(end - 2, 0) : end + 1].decode("utf-8", "ignore")[-1:].isspace() for end in ends
    )


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
        quoted = b'"' in body
        if not quoted and not _may_have_padded_cells(body, self._sep):
            return frame  # named and typed by the schema; nothing to strip, empty cells null
        # polars reads an unquoted empty cell as null but a quoted one ("") as ""
        return tidy(frame, self._names, check_first=True, empty_is_null=not quoted)

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
                    yield tidy(string_frame(self._names, columns), self._names)
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
            yield tidy(string_frame(self._names, columns), self._names)


def open_csv(source: Readable, *, prefix: bytes, batch_rows: int, max_columns: int) -> Table:
    prefix += read_at_least(source, _SNIFF_BYTES - len(prefix))
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
    hint = _delimiter_hint(text)
    start = hint[1] if hint else 0  # where the header line starts in text
    # blank lines above the header (ASCII, so as many bytes as characters)
    start += len(text[start:]) - len(text[start:].lstrip(" \t\r\n"))
    start -= len(text[:start]) - len(text[:start].rstrip(" \t"))  # not the header's own indent
    header_line = _first_line(text[start:])
    while header_line is None and not at_eof:
        # a very wide header: read on (bounded) until the first line ends
        if len(prefix) >= _MAX_HEADER_BYTES:
            raise ReadError(
                "too_many_columns",
                "the header row is longer than 1 MiB; check that the first row is the header",
            )
        more = read_at_least(source, _SNIFF_BYTES)
        at_eof = len(more) < _SNIFF_BYTES
        prefix += more
        text += decoder.decode(more, final=at_eof)
        header_line = _first_line(text[start:])
    if header_line is None:
        header_line = text[start:]
    delimiter = hint[0] if hint else _detect_delimiter(header_line)
    raw_names = next(csv.reader([header_line], delimiter=delimiter))
    names = check_header(raw_names, max_columns)
    if not any(names):
        raise ReadError("empty_file", "the file is empty; export the extract again")
    chunks = _utf8_chunks(source, prefix[skip:], encoding)
    if start:
        chunks = _skip_bytes(chunks, start)  # the sep= line is ASCII: a byte a character
    # the header comes through as the first record and is dropped there
    reader = _CsvReader(chunks, names, delimiter, batch_rows)
    return require_rows(names, reader.frames())
