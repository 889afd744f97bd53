"""Check a Parquet file's page headers before pyarrow inflates any page.

The footer's sizes are not what pyarrow allocates by, so each column chunk's page headers
(Thrift compact protocol) are read here by hand and a file whose pages would inflate to more
than an honest extract's is refused (``parquet_too_large``). A header that does not parse
raises ``BadThrift``: the file is damaged.
"""

from __future__ import annotations

from typing import Any

from adapters.tables import ReadError, describe_bytes

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


class BadThrift(Exception):
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
    raise BadThrift


def _zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _skip_thrift(data: bytes, position: int, kind: int, limit: int, depth: int) -> int:
    """The position after a compact-protocol value of type ``kind`` (a list's booleans are a
    byte each; a field's are in its header, so ``kind`` 1 and 2 are never skipped here)."""
    if depth > 16 or position > limit:
        raise BadThrift
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
            raise BadThrift
        for _ in range(size):
            position = _skip_thrift(data, position, element, limit, depth + 1)
        return position
    if kind == 11:  # map
        size, position = _varint(data, position)
        if not size:
            return position
        if size > limit - position:
            raise BadThrift
        types = data[position]
        position += 1
        for _ in range(size):
            position = _skip_thrift(data, position, types >> 4, limit, depth + 1)
            position = _skip_thrift(data, position, types & 0x0F, limit, depth + 1)
        return position
    if kind == 12:
        return _thrift_struct(data, position, limit, depth + 1, {})[1]
    raise BadThrift


def _thrift_struct(
    data: bytes, position: int, limit: int, depth: int, wanted: dict[int, int]
) -> tuple[dict[int, int], int]:
    """Read a struct; return the values of its i32 fields whose ids are in ``wanted`` (which
    is filled in) and the position after it."""
    field = 0
    while True:
        if position > limit:
            raise BadThrift
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
        raise BadThrift
    return kind, uncompressed, compressed, position


def check_parquet_pages(data: bytes, metadata: Any) -> None:
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
                raise BadThrift
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
                f"has pages that inflate to more than {describe_bytes(_MAX_PARQUET_PAGE_BYTES)} "
                "at once"
            )


def _parquet_too_large(problem: str) -> ReadError:
    return ReadError(
        "parquet_too_large",
        f"the Parquet file {problem}; write it again with the writer's default page and "
        "row-group sizes (pyarrow, polars), or export the extract as CSV UTF-8",
    )
