"""Read an Excel .xlsx upload: the first worksheet, in batches.

A workbook is a zip archive, and a small one can unpack to gigabytes, so its directory is
checked before openpyxl inflates any of it (``workbook_too_large``), and the text its cells
decode to is bounded as it is read. openpyxl is imported only when a workbook is opened.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from typing import Any

import polars as pl

from adapters.tables import (
    MAX_BATCH_TEXT,
    ReadError,
    Table,
    TextBudget,
    check_header,
    describe_bytes,
    require_rows,
    string_frame,
    tidy,
)


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


def _workbook_too_large(problem: str, advice: str = "export the extract as CSV UTF-8") -> ReadError:
    return ReadError("workbook_too_large", f"{problem}; {advice}")


def _unreadable_workbook(what: str = "the file could not be opened") -> ReadError:
    return ReadError(
        "unreadable_workbook",
        f"{what} as an Excel .xlsx workbook; save it again as .xlsx (Excel Workbook) "
        "or export it as CSV UTF-8",
    )


# Said when the first worksheet holds no extract but the workbook has others: they are never read
# (which sheet holds the extract is not guessed), and their names are not quoted.
_FIRST_SHEET_ONLY = (
    "only the first worksheet of a workbook is read, so move the extract (header row first) "
    "to the first worksheet, or delete the worksheets before it, and upload again"
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
                f"its cells share) unpacks to more than {describe_bytes(_MAX_WHOLE_PART_BYTES)}"
            )
    if total > max_unpacked_bytes:
        raise _workbook_too_large(
            f"the workbook unpacks to more than {describe_bytes(max_unpacked_bytes)}",
            "split the extract into smaller uploads, or export it as CSV UTF-8",
        )


def _workbook_text_refusal(limit: int) -> ReadError:
    return _workbook_too_large(
        f"the workbook's cells hold more than {describe_bytes(limit)} of text",
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


def open_xlsx(data: bytes, *, batch_rows: int, max_columns: int, max_unpacked_bytes: int) -> Table:
    import openpyxl  # imported lazily: only workbook uploads need it

    _check_workbook_archive(data, max_unpacked_bytes)
    try:
        # data_only=False: a formula cell reads as its "=..." text, so validation can flag it
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:
        raise _unreadable_workbook() from None
    if not workbook.worksheets:
        raise ReadError("empty_file", "the workbook has no worksheets")
    later_sheets = len(workbook.worksheets) > 1
    if workbook.worksheets[0].sheet_state != "visible":
        # the user sees another sheet first, and would have its rows stored unawares
        raise ReadError(
            "hidden_worksheet",
            f"the first worksheet is hidden; {_FIRST_SHEET_ONLY} (or unhide it if it holds the "
            "extract)",
        )
    rows = _sheet_rows(workbook.worksheets[0])
    header: list[Any] | None = None
    for row in rows:
        if any(cell is not None and str(cell).strip() for cell in row):
            header = list(row)
            break
    if header is None:
        if later_sheets:
            raise ReadError("empty_file", f"the first worksheet is empty; {_FIRST_SHEET_ONLY}")
        raise ReadError("empty_file", "the first worksheet is empty; put the extract there")
    while header and (header[-1] is None or not str(header[-1]).strip()):
        header.pop()
    names = check_header([_cell_text(cell) or "" for cell in header], max_columns)
    width = len(names)

    def frames() -> Iterator[pl.DataFrame]:
        budget = TextBudget(max_unpacked_bytes, _workbook_text_refusal)
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
                if count == batch_rows or text >= MAX_BATCH_TEXT:
                    yield tidy(string_frame(names, columns), names)
                    columns = [[] for _ in range(width)]
                    count = text = 0
            if count:
                yield tidy(string_frame(names, columns), names)
        finally:
            workbook.close()

    try:
        return require_rows(names, frames())
    except ReadError as error:
        if error.code != "no_rows" or not later_sheets:
            raise
        raise ReadError(
            "no_rows", f"the first worksheet has a header but no data rows; {_FIRST_SHEET_ONLY}"
        ) from None
