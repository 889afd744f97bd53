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

This module only dispatches on the file name and the file's first bytes. The readers live in
``adapters.csv_reader``, ``adapters.workbooks`` (.xlsx and its archive checks) and
``adapters.parquet_reader`` (with ``adapters.parquet_pages``, its page-header checks); what they
share (``Table``, ``ReadError``, the header checks) is in ``adapters.tables`` and re-exported here.
"""

from __future__ import annotations

from typing import BinaryIO

from adapters.csv_reader import open_csv
from adapters.parquet_reader import open_parquet
from adapters.tables import (
    MAX_UNPACKED_BYTES,
    Readable,
    ReadError,
    Table,
    column_position,
    normalise_header,
    read_at_least,
)
from adapters.workbooks import open_xlsx

__all__ = [
    "ACCEPTED_EXTENSIONS",
    "MAX_UNPACKED_BYTES",
    "ReadError",
    "Table",
    "column_position",
    "normalise_header",
    "open_table",
]

ACCEPTED_EXTENSIONS = (".csv", ".txt", ".tsv", ".xlsx", ".parquet")
_CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
_ZIP_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls / .doc
_SAVE_AS_XLSX = "save as .xlsx (Excel Workbook) or CSV UTF-8"
# Spreadsheet formats agencies try that are not read, with what to do instead.
_NOT_ACCEPTED = {
    ".xls": f"Excel 97-2003 .xls files are not accepted; open it in Excel and {_SAVE_AS_XLSX}",
    ".xlsm": (
        "macro-enabled Excel .xlsm workbooks are not accepted; open it in Excel and "
        + _SAVE_AS_XLSX
    ),
    ".xlsb": f"Excel binary .xlsb workbooks are not accepted; open it in Excel and {_SAVE_AS_XLSX}",
    ".ods": (
        "OpenDocument .ods spreadsheets are not accepted; open it in LibreOffice Calc or Excel "
        "and " + _SAVE_AS_XLSX
    ),
}


def _extension(filename: str) -> str:
    name = filename.strip().lower()
    dot = name.rfind(".")
    return name[dot:] if dot >= 0 else ""


def _read_all(source: Readable) -> bytes:
    chunks: list[bytes] = []
    while chunk := source.read(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


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
    if extension in _NOT_ACCEPTED:
        raise ReadError("unsupported_format", _NOT_ACCEPTED[extension])
    if extension not in ACCEPTED_EXTENSIONS:
        raise ReadError(
            "unsupported_format",
            "the file type is not accepted; upload one of: " + ", ".join(ACCEPTED_EXTENSIONS),
        )
    magic = read_at_least(source, 4)
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
        return open_csv(source, prefix=magic, batch_rows=batch_rows, max_columns=max_columns)
    data = magic + _read_all(source)
    if extension == ".xlsx":
        if not magic.startswith(_ZIP_MAGIC):
            raise ReadError(
                "wrong_format",
                "the file is named .xlsx but is not an Excel workbook; "
                "save it as .xlsx (Excel Workbook) or export it as CSV UTF-8",
            )
        return open_xlsx(
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
    return open_parquet(
        data, batch_rows=batch_rows, max_columns=max_columns, max_unpacked_bytes=max_unpacked_bytes
    )
