"""open_table on compressed uploads that unpack to far more than they weigh: refused before they
are inflated, or read in batches whose memory does not grow with them."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.readers import ReadError, Table, open_table
from tests.conftest import python_output

MiB = 1024 * 1024


def read_all(table: Table) -> list[pl.DataFrame]:
    return list(table.batches)


def refused(data: bytes, filename: str, **options: int) -> ReadError:
    with pytest.raises(ReadError) as caught:
        read_all(open_table(io.BytesIO(data), filename, **options))
    return caught.value


# ------------------------------------------------------------------------------- workbooks

SHEET = "xl/worksheets/sheet1.xml"
SHEET_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
)
SHEET_TAIL = "</sheetData></worksheet>"
SHARED_STRINGS_TYPE = (
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)


def workbook_bytes() -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["forename", "surname"])
    sheet.append(["Amara", "Okafor"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def rezipped(parts: dict[str, bytes]) -> bytes:
    """openpyxl's two-row workbook with ``parts`` replaced or added."""
    return with_parts(workbook_bytes(), parts)


def with_parts(original: bytes, parts: dict[str, bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(original))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        names = [info.filename for info in source.infolist()]
        for name in names + [name for name in parts if name not in names]:
            target.writestr(name, parts[name] if name in parts else source.read(name))
    return buffer.getvalue()


def inline_row(number: int, *values: str) -> str:
    cells = "".join(
        f'<c r="{chr(65 + index)}{number}" t="inlineStr"><is><t>{value}</t></is></c>'
        for index, value in enumerate(values)
    )
    return f'<row r="{number}">{cells}</row>'


def test_a_sheet_padded_to_inflate_a_thousandfold_is_refused_before_it_is_read() -> None:
    # the reported bomb, smaller: whitespace openpyxl would have held as one string
    sheet = SHEET_HEAD + inline_row(1, "forename") + inline_row(2, "Amara")
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(workbook_bytes())) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            if info.filename != SHEET:
                target.writestr(info, source.read(info.filename))
        with target.open(SHEET, "w") as part:
            part.write(sheet.encode())
            for _ in range(64):
                part.write(b" " * MiB)
            part.write(SHEET_TAIL.encode())
    data = buffer.getvalue()
    assert len(data) < 200_000

    error = refused(data, "extract.xlsx")
    assert error.code == "workbook_too_large"
    assert "compressed more than 100 to 1" in error.message
    assert "export it as CSV UTF-8" in error.message


def test_a_workbook_that_unpacks_past_the_limit_is_refused() -> None:
    data = workbook_bytes()
    assert [frame.height for frame in read_all(open_table(io.BytesIO(data), "x.xlsx"))] == [1]
    error = refused(data, "x.xlsx", max_unpacked_bytes=4_000)
    assert error.code == "workbook_too_large"
    assert "unpacks to more than 4,000 bytes" in error.message


def test_a_shared_strings_table_declaring_more_than_256_mib_is_refused_unread() -> None:
    # openpyxl reads the shared strings whole; the zip directory says how big they are, and
    # zipfile never inflates past that, so the directory alone decides (10:1, under the
    # ratio limit). The part's bytes are small: the refusal must come before any inflating.
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(workbook_bytes())) as source,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info, source.read(info.filename))
        target.writestr("xl/sharedStrings.xml", b"<sst/>")
        declared = target.filelist[-1]
        declared.file_size, declared.compress_size = 300 * MiB, 30 * MiB
    error = refused(buffer.getvalue(), "extract.xlsx")
    assert error.code == "workbook_too_large"
    assert "256 MiB" in error.message


def test_a_workbook_of_ten_thousand_parts_is_refused() -> None:
    parts = {f"xl/media/p{index}.bin": b"" for index in range(10_001)}
    error = refused(rezipped(parts), "extract.xlsx")
    assert error.code == "workbook_too_large"
    assert "more than 10,000 parts" in error.message


def test_rows_past_excels_limit_are_refused() -> None:
    # openpyxl fills the gap up to row 1,048,577 one empty row at a time
    sheet = (
        SHEET_HEAD
        + inline_row(1, "forename")
        + inline_row(2, "Amara")
        + '<row r="1048577"><c r="A1048577" t="inlineStr"><is><t>Amara</t></is></c></row>'
        + SHEET_TAIL
    )
    error = refused(rezipped({SHEET: sheet.encode()}), "extract.xlsx")
    assert error.code == "workbook_too_large"
    assert "1,048,576 rows" in error.message
    assert "Amara" not in error.message


def shared_string_workbook(rows: int, value_bytes: int) -> bytes:
    """A workbook whose every data row shows the same shared string of ``value_bytes``."""
    long_value = "x" * value_bytes
    strings = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" '
        f'uniqueCount="1"><si><t>{long_value}</t></si></sst>'
    )
    body = "".join(f'<row r="{n}"><c r="A{n}" t="s"><v>0</v></c></row>' for n in range(2, rows + 2))
    sheet = SHEET_HEAD + inline_row(1, "note") + body + SHEET_TAIL
    original = workbook_bytes()
    with zipfile.ZipFile(io.BytesIO(original)) as source:
        types = source.read("[Content_Types].xml").replace(
            b"</Types>", SHARED_STRINGS_TYPE.encode() + b"</Types>"
        )
    return with_parts(
        original,
        {
            SHEET: sheet.encode(),
            "xl/sharedStrings.xml": strings.encode(),
            "[Content_Types].xml": types,
        },
    )


# --------------------------------------------------------------------------------- parquet


def peak_rss_reading(path: Path) -> tuple[int, int]:
    """(rows, peak resident MiB) of a fresh interpreter reading ``path`` with open_table.

    The peak is VmHWM, which starts afresh with the new program (ru_maxrss would carry over
    the forking test process's own peak).
    """
    script = (
        "import io, re\n"
        "from adapters.readers import open_table\n"
        f"data = open({str(path)!r}, 'rb').read()\n"
        "rows = sum(b.height for b in open_table(io.BytesIO(data), 'x.parquet').batches)\n"
        "status = open('/proc/self/status').read()\n"
        "print(rows, int(re.search(r'VmHWM:\\s*(\\d+) kB', status).group(1)) // 1024)\n"
    )
    rows, peak = python_output(script).split()
    return int(rows), int(peak)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_a_row_group_of_millions_of_identical_rows_is_read_in_bounded_memory(
    tmp_path: Path,
) -> None:
    # a few kilobytes that polars decoded a row group at a time: +380 MiB for 3 million rows
    # (2.5 GiB for 20 million); streamed, memory no longer grows with the row group
    rows = 3_000_000
    values = {
        "crime_reference": "CR0012345",
        "role": "victim",
        "person": "P100234",
        "forename": "Amara",
        "surname": "Okafor",
        "date_of_birth": "2008-03-14",
        "postcode": "N1 9GU",
        "offence": "2024-02-10 21:15",
    }
    bomb = tmp_path / "bomb.parquet"
    frame = pl.DataFrame(
        {name: pl.repeat(value, rows, eager=True) for name, value in values.items()}
    )
    frame.write_parquet(bomb, row_group_size=rows)
    assert bomb.stat().st_size < 100_000
    assert pq.ParquetFile(bomb).metadata.num_row_groups == 1
    small = tmp_path / "small.parquet"
    frame.head(1).write_parquet(small)

    baseline_rows, baseline = peak_rss_reading(small)
    bomb_rows, peak = peak_rss_reading(bomb)
    assert (baseline_rows, bomb_rows) == (1, rows)
    assert peak - baseline < 150, f"reading grew memory by {peak - baseline} MiB"


def test_a_page_that_inflates_past_256_mib_is_refused_unread() -> None:
    # pyarrow inflates a page whole; 17 million copies of one value make a 272 MB page that
    # zstd packs into kilobytes
    rows = 17_000_000
    indices = pa.array(np.zeros(rows, dtype=np.int32))
    column = pa.DictionaryArray.from_arrays(indices, ["Amara Okafor"]).dictionary_decode()
    buffer = io.BytesIO()
    pq.write_table(
        pa.table({"forename": column}),
        buffer,
        row_group_size=rows,
        compression="zstd",
        use_dictionary=False,
        write_statistics=False,
        data_page_size=1 << 30,
        max_rows_per_page=rows,
    )
    del column
    data = buffer.getvalue()
    assert len(data) < 1_000_000
    error = refused(data, "extract.parquet")
    assert error.code == "parquet_too_large"
    assert "256 MiB" in error.message


def dictionary_parquet(rows: int, value_bytes: int) -> bytes:
    """A Parquet file whose every row holds one dictionary value of ``value_bytes``."""
    column = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), ["x" * value_bytes])
    buffer = io.BytesIO()
    pq.write_table(pa.table({"note": column}), buffer, compression="zstd")
    return buffer.getvalue()


# One long value referenced from every row (a workbook's shared string, a Parquet dictionary
# entry): a few kilobytes of file, 100 MiB of cells.
LONG_VALUE_FILES = [
    pytest.param(shared_string_workbook, "extract.xlsx", "workbook_too_large", id="xlsx"),
    pytest.param(dictionary_parquet, "extract.parquet", "parquet_too_large", id="parquet"),
]


@pytest.mark.parametrize(("build", "filename", "code"), LONG_VALUE_FILES)
def test_one_long_value_in_every_row_comes_in_batches_of_bounded_text(
    build: Callable[..., bytes], filename: str, code: str
) -> None:
    data = build(rows=100, value_bytes=MiB)
    assert len(data) < 100_000
    frames = read_all(open_table(io.BytesIO(data), filename))
    assert sum(frame.height for frame in frames) == 100
    assert max(frame.height for frame in frames) <= 32  # 32 MiB of text a batch
    assert frames[0].item(0, 0) == "x" * MiB


@pytest.mark.parametrize(("build", "filename", "code"), LONG_VALUE_FILES)
def test_long_values_that_decode_past_the_limit_are_refused(
    build: Callable[..., bytes], filename: str, code: str
) -> None:
    error = refused(build(rows=100, value_bytes=MiB), filename, max_unpacked_bytes=50 * MiB)
    assert error.code == code
    assert "more than 50 MiB of text" in error.message


def test_a_damaged_page_header_is_refused_as_unreadable() -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"forename": ["Amara", "René"]}), buffer)
    data = bytearray(buffer.getvalue())
    data[4:12] = b"\xff" * 8  # the first page header: a varint that never ends
    error = refused(bytes(data), "extract.parquet")
    assert error.code == "unreadable_parquet"
