"""open_table: every accepted format, streaming, and every kind of file it must refuse."""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from adapters.readers import ReadError, Table, open_table
from tests.adapters.adapter_extracts import ReadOnlyStream
from tests.conftest import python_output


def read_all(table: Table) -> pl.DataFrame:
    frames = list(table.batches)
    return pl.concat(frames) if frames else pl.DataFrame()


def open_bytes(data: bytes, filename: str = "extract.csv", **options: int) -> pl.DataFrame:
    table = open_table(io.BytesIO(data), filename, **options)
    frame = read_all(table)
    assert frame.columns == table.columns
    assert all(dtype == pl.String for dtype in frame.dtypes)
    return frame


def refused(data: bytes, filename: str = "extract.csv", **options: int) -> ReadError:
    with pytest.raises(ReadError) as caught:
        read_all(open_table(io.BytesIO(data), filename, **options))
    return caught.value


NAMES = "Forename,Surname,Date of Birth\nZoë,Okafor,14/03/2008\nRené,Ní Bhriain,2009-01-02\n"


# ------------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("encoding", "name"),
    [("utf-8", "Zoë"), ("utf-8-sig", "Zoë"), ("utf-16", "Zoë"), ("cp1252", "Zoë")],
)
def test_csv_encodings_are_detected(encoding: str, name: str) -> None:
    frame = open_bytes(NAMES.encode(encoding))
    assert frame.columns == ["forename", "surname", "date_of_birth"]
    assert frame.get_column("forename").to_list() == [name, "René"]
    assert frame.get_column("surname").to_list() == ["Okafor", "Ní Bhriain"]


def test_windows_1252_name_with_accent() -> None:
    frame = open_bytes("forename,surname\nJosé,Müller\n".encode("cp1252"))
    assert frame.row(0) == ("José", "Müller")


def test_bytes_neither_utf8_nor_windows_1252_after_the_sniffed_block_are_refused() -> None:
    body = "forename,surname\n" + "Amara,Okafor\n" * 10_000
    error = refused(body.encode() + b"\x81\x8d,x\n")  # undefined in Windows-1252 too
    assert error.code == "bad_encoding"
    assert "UTF-8 or Windows-1252" in error.message


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8"])
# the first accented letter: in the sniffed first 64 KiB, just after it, megabytes on
@pytest.mark.parametrize("ascii_rows", [10, 6_000, 150_000])
def test_the_first_accented_letter_decides_the_encoding_wherever_it_is(
    encoding: str, ascii_rows: int
) -> None:
    rows = ["Amara,Okafor"] * ascii_rows + ["Zoë,Müller", "José,O’Brien"]
    body = ("forename,surname\n" + "\n".join(rows) + "\n").encode(encoding)
    table = open_table(ReadOnlyStream(body, chunk=65_536), "x.csv", batch_rows=50_000)  # type: ignore[arg-type]
    frame = pl.concat(list(table.batches))
    assert frame.height == ascii_rows + 2
    assert frame.rows()[-2:] == [("Zoë", "Müller"), ("José", "O’Brien")]


def test_blank_lines_above_the_header_are_skipped() -> None:
    frame = open_bytes(b"\n \r\n\n  Forename ,Surname\nZo\xc3\xab,Okafor\n")
    assert frame.columns == ["forename", "surname"]
    assert frame.rows() == [("Zoë", "Okafor")]


def test_windows_1252_file_with_an_undefined_byte_late_on_is_refused() -> None:
    body = "forename,surname\n" + "José,Müller\n" * 20_000
    error = refused(body.encode("cp1252") + b"\x81,x\n")
    assert error.code == "bad_encoding"
    assert "Windows-1252" in error.message


def test_undecodable_bytes_are_refused_as_bad_encoding() -> None:
    # 0x81 is undefined in Windows-1252 and invalid as UTF-8
    error = refused(b"forename,surname\n\x81\x81bad,x\n")
    assert error.code == "bad_encoding"
    assert "export it as CSV UTF-8" in error.message


# ------------------------------------------------------------------------------ delimiters


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_detected_from_the_header(delimiter: str) -> None:
    text = delimiter.join(["forename", "surname", "note"]) + "\n"
    text += delimiter.join(["Amara", "Okafor", '"a, b; c | d"']) + "\n"
    frame = open_bytes(text.encode(), "extract.tsv" if delimiter == "\t" else "extract.csv")
    assert frame.columns == ["forename", "surname", "note"]
    assert frame.row(0) == ("Amara", "Okafor", "a, b; c | d")


def test_quoted_fields_with_newlines_and_delimiters() -> None:
    text = 'a,b,c\n"line one\nline two","x,y",3\n4,"say ""hi""",6\n'
    frame = open_bytes(text.encode())
    assert frame.rows() == [("line one\nline two", "x,y", "3"), ("4", 'say "hi"', "6")]


def test_quoted_empty_cells_are_null_and_quoted_blank_lines_are_kept() -> None:
    text = 'a,b,c\n"","  ",x\n"one\n\ntwo",,y\n'
    frame = open_bytes(text.encode())
    assert frame.rows() == [(None, None, "x"), ("one\n\ntwo", None, "y")]


def test_a_quote_inside_an_unquoted_cell_is_kept_as_text() -> None:
    # not RFC 4180, but case-management exports write 12" blade; spreadsheets read it as text
    text = 'weapon,count\nknife,1\n12" blade,2\nbat,3\n'
    frame = open_bytes(text.encode())
    assert frame.rows() == [("knife", "1"), ('12" blade', "2"), ("bat", "3")]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(newline: str) -> None:
    text = newline.join(["forename,surname", "Amara,Okafor", "", "René,Ní Bhriain", ""])
    frame = open_bytes(text.encode())
    assert frame.rows() == [("Amara", "Okafor"), ("René", "Ní Bhriain")]


def test_header_names_are_normalised_and_cells_tidied() -> None:
    frame = open_bytes(b"\xef\xbb\xbf Date of Birth ,SURNAME\n  2008-01-01 ,   \n\n,Okafor\n")
    assert frame.columns == ["date_of_birth", "surname"]
    assert frame.rows() == [("2008-01-01", None), (None, "Okafor")]


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("Amara Okafor", "Amara Okafor"),  # inner spaces are kept
        (" Amara", "Amara"),
        ("Amara ", "Amara"),
        ("   ", None),
        ("\tAmara", "Amara"),
        ("Amara\x0b", "Amara"),
        ("\u00a0Amara", "Amara"),
        ("Amara\u3000", "Amara"),
        ("\u2009Amara\u2009", "Amara"),
        ("O\u2019Brien", "O\u2019Brien"),
        ("José", "José"),
        ("£5", "£5"),
        ("\u1680Amara\u0085", "Amara"),
        ("Amara\u205f", "Amara"),
        ("Zoë\u2029", "Zoë"),
    ],
)
@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_cells_are_tidied_wherever_they_sit_in_a_record(
    cell: str, value: str | None, position: str
) -> None:
    # each kind of whitespace that polars strips, in the first, a middle and the last cell
    cells = {"first": [cell, "x", "y"], "middle": ["x", cell, "y"], "last": ["x", "y", cell]}
    row = ",".join(cells[position])
    data = f"a,b,c\nx,y,z\n{row}\nx,y,z\n".encode()
    frame = open_bytes(data)
    index = ["first", "middle", "last"].index(position)
    assert frame.row(1)[index] == value
    assert frame.row(0) == ("x", "y", "z")


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_padding_is_stripped_exactly_as_str_strip_does_among_letters_of_many_scripts(
    newline: str,
) -> None:
    # The reader skips tidying a batch whose bytes show no padded cell; this checks that
    # shortcut against str.strip on cells that mix padding with letters that share its bytes
    # (é is C3 A9 and U+2029 ends in A9; £ starts with C2 like U+00A0). One record a batch,
    # so that each record's padding alone decides whether its batch is tidied.
    pieces = ["a", "é", "£", "Ł", "😀", "\u2019", " ", "\t", "\u00a0", "\u0085", "\u2009",
              "\u2029", "\u3000", "\u1680", "\u205f"]  # fmt: skip
    rng = random.Random(11)
    rows = [
        ["".join(rng.choices(pieces, k=rng.randrange(0, 4))) for _ in range(4)]
        for _ in range(1_000)
    ]
    body = newline.join(["a,b,c,d", *(",".join(row) for row in rows)]) + newline
    table = open_table(ReadOnlyStream(body.encode()), "x.csv", batch_rows=1)  # type: ignore[arg-type]
    read = pl.concat(list(table.batches)).rows()
    expected = [tuple(cell.strip() or None for cell in row) for row in rows]
    assert read == expected


def test_empty_cells_are_null_and_padding_goes_with_either_line_ending() -> None:
    data = b"a,b,c\nAmara Okafor,,N1 9GU\n,x,\n"
    assert open_bytes(data).rows() == [("Amara Okafor", None, "N1 9GU"), (None, "x", None)]
    crlf = data.replace(b"\n", b"\r\n")
    assert open_bytes(crlf).rows() == [("Amara Okafor", None, "N1 9GU"), (None, "x", None)]
    padded = b"a,b,c\r\nAmara ,x,y \r\n"
    assert open_bytes(padded).rows() == [("Amara", "x", "y")]


# ------------------------------------------------------------------------------- streaming


def test_csv_streams_from_a_read_only_source() -> None:
    body = "forename,surname,n\n" + "".join(f"Amara,Okafor,{i}\n" for i in range(50_000))
    table = open_table(ReadOnlyStream(body.encode()), "extract.csv", batch_rows=10_000)  # type: ignore[arg-type]
    sizes = [batch.height for batch in table.batches]
    assert sizes == [10_000] * 5


def test_batches_cut_between_records_whatever_the_reads() -> None:
    # quoted line breaks, blank lines and CRLF everywhere, read 1,000 bytes at a time
    rows = [
        (f"P{i}", f"note {i}\r\nsecond line, with a comma" if i % 3 else "", str(i))
        for i in range(3_000)
    ]
    body = "person,note,n\r\n" + "".join(
        f'{p},"{note}",{n}\r\n' + ("\r\n" if int(n) % 7 == 0 else "") for p, note, n in rows
    )
    table = open_table(ReadOnlyStream(body.encode(), chunk=1_000), "x.csv", batch_rows=1_000)  # type: ignore[arg-type]
    frames = list(table.batches)
    assert [frame.height for frame in frames] == [1_000] * 3
    expected = [(p, note or None, n) for p, note, n in rows]
    assert pl.concat(frames).rows() == expected


def test_large_csv_yields_more_than_one_batch() -> None:
    row = "CR0012345,victim,P100234,Amara,Okafor,2008-03-14,N1 9GU,2024-02-10 21:15\n"
    body = "crime_reference,role,person,forename,surname,dob,postcode,offence\n" + row * 200_000
    table = open_table(ReadOnlyStream(body.encode(), chunk=1 << 20), "big.csv")  # type: ignore[arg-type]
    sizes = [batch.height for batch in table.batches]
    assert len(sizes) > 1
    assert sum(sizes) == 200_000
    assert max(sizes) <= 65_536


# ----------------------------------------------------------------------------- xlsx/parquet


def test_xlsx_first_sheet_cells_converted_and_formulas_kept() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Forename", "Date of Birth", "Age", "Score", "Flag", "Link", "Seen"])
    sheet.append(
        [
            "Amara",
            dt.date(2008, 3, 14),
            15,
            2.5,
            True,
            '=HYPERLINK("http://x","y")',
            dt.datetime(2024, 2, 10, 21, 15),
        ]
    )
    sheet.append([None, None, None, None, None, None, None])  # blank row: skipped
    sheet.append(["René", dt.datetime(2009, 1, 2), 15.0, None, False, "plain", None])
    workbook.create_sheet("Other").append(["ignored"])
    buffer = io.BytesIO()
    workbook.save(buffer)

    frame = open_bytes(buffer.getvalue(), "Extract.XLSX")
    assert frame.columns == ["forename", "date_of_birth", "age", "score", "flag", "link", "seen"]
    assert frame.rows() == [
        (
            "Amara",
            "2008-03-14",
            "15",
            "2.5",
            "true",
            '=HYPERLINK("http://x","y")',
            "2024-02-10T21:15:00",
        ),
        ("René", "2009-01-02", "15", None, "false", "plain", None),
    ]


def test_parquet_columns_cast_to_strings() -> None:
    table = pa.table(
        {
            "Forename": ["Amara", " "],
            "date_of_birth": pa.array([dt.date(2008, 3, 14), None]),
            "age": pa.array([15, 16], type=pa.int32()),
            "seen": pa.array([dt.datetime(2024, 2, 10, 21, 15), None]),
            "flag": [True, False],
            "whole": [3.0, 2.5],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    frame = open_bytes(buffer.getvalue(), "extract.parquet", batch_rows=1)
    assert frame.columns == ["forename", "date_of_birth", "age", "seen", "flag", "whole"]
    assert frame.rows() == [
        ("Amara", "2008-03-14", "15", "2024-02-10T21:15:00", "true", "3"),
        (None, None, "16", None, "false", "2.5"),
    ]


def test_parquet_text_that_is_not_utf8_is_refused_before_polars_reads_it() -> None:
    # pyarrow passes a string column's bytes on unchecked; polars crashed the process on them
    postcodes = pa.Array.from_buffers(
        pa.string(),
        3,
        [None, pa.py_buffer(np.array([0, 6, 12, 18], dtype=np.int32).tobytes()),
         pa.py_buffer(b"N7 8P\xfc" * 3)],
    )  # fmt: skip
    buffer = io.BytesIO()
    names = ["Amara", "Bola", "Chidi"]
    pq.write_table(pa.table({"forename": names, "postcode": postcodes}), buffer)
    error = refused(buffer.getvalue(), "extract.parquet")
    assert error.code == "bad_encoding" and "UTF-8" in error.message


def test_a_parquet_footer_that_aborts_pyarrow_is_refused_without_killing_the_hub() -> None:
    # One byte changed in a police extract's footer (column statistics that no longer fit
    # their type): pyarrow calls std::terminate as soon as that column's metadata is read.
    # Run in a fresh interpreter, so that a regression fails this test, not the whole suite.
    damaged = Path(__file__).parent / "files" / "damaged-footer.parquet"
    script = (
        "import io\n"
        "from adapters.readers import ReadError, open_table\n"
        f"data = open({str(damaged)!r}, 'rb').read()\n"
        "try:\n"
        "    list(open_table(io.BytesIO(data), 'x.parquet').batches)\n"
        "except ReadError as error:\n"
        "    print(error.code)\n"
    )
    assert python_output(script).strip() == "unreadable_parquet"


# -------------------------------------------------------------------------------- refusals


def test_empty_file() -> None:
    assert refused(b"").code == "empty_file"
    assert refused(b"\n\n  \n").code == "empty_file"


def test_header_only_file_has_no_rows() -> None:
    assert refused(b"forename,surname\n").code == "no_rows"
    assert refused(b"forename,surname\n\n\n").code == "no_rows"


def test_binary_junk_named_csv() -> None:
    junk = bytes(range(256)) * 64
    error = refused(junk)
    assert error.code == "not_text"
    junk_without_nul = bytes(b % 31 + 1 for b in range(20_000))
    assert refused(junk_without_nul).code == "not_text"


def test_zip_or_workbook_named_csv() -> None:
    workbook = openpyxl.Workbook()
    buffer = io.BytesIO()
    workbook.save(buffer)
    error = refused(buffer.getvalue(), "extract.csv")
    assert error.code == "wrong_format"
    assert ".xlsx" in error.message


def test_parquet_named_csv_and_csv_named_xlsx() -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": ["x"]}), buffer)
    assert refused(buffer.getvalue(), "extract.csv").code == "wrong_format"
    assert refused(b"a,b\n1,2\n", "extract.xlsx").code == "wrong_format"
    assert refused(b"a,b\n1,2\n", "extract.parquet").code == "wrong_format"


def test_unknown_extension_lists_the_accepted_ones() -> None:
    error = refused(b"a,b\n1,2\n", "extract.pdf")
    assert error.code == "unsupported_format"
    for extension in (".csv", ".xlsx", ".parquet"):
        assert extension in error.message


def test_ragged_row_names_the_row_not_its_content() -> None:
    secret = "Jonathan Secretname"
    error = refused(f"forename,surname\nAmara,Okafor\n\n{secret},x,extra\n".encode())
    assert error.code == "ragged_row"
    assert "row 3" in error.message
    assert "Secretname" not in error.message


def test_short_row_late_in_the_file_names_its_row() -> None:
    body = "forename,surname,n\n" + "Amara,Okafor,1\n" * 40_000 + "\nAmara,Okafor\n"
    error = refused(body.encode())
    assert error.code == "ragged_row"
    assert "row 40002 " in error.message
    assert "Okafor" not in error.message


def test_row_with_ten_thousand_columns_is_refused() -> None:
    wide_row = ",".join(["x"] * 10_000)
    error = refused(f"forename,surname\nAmara,Okafor\n{wide_row}\n".encode())
    assert error.code == "ragged_row"
    assert "x,x" not in error.message


def test_header_with_ten_thousand_columns_is_refused() -> None:
    header = ",".join(f"c{i}" for i in range(10_000))
    error = refused(f"{header}\n{','.join(['1'] * 10_000)}\n".encode())
    assert error.code == "too_many_columns"
    assert refused(b"a,b,c\n1,2,3\n", max_columns=2).code == "too_many_columns"


@pytest.mark.parametrize(
    ("header", "code"),
    [("forename,Forename", "duplicate_header"), ("forename,,surname", "empty_header")],
)
def test_bad_header_names(header: str, code: str) -> None:
    assert refused(f"{header}\n1,2,3\n".encode()).code == code


def test_a_data_row_read_as_the_header_is_not_quoted_when_it_repeats_a_value() -> None:
    # no header row: the first record is read as the header, and its two equal dates
    # are duplicate "names"; the message must name the columns, not the dates
    error = refused(b"2008-03-14,Amara,Okafor,2008-03-14\n2009-01-02,Zoe,Ng,2009-01-02\n")
    assert error.code == "duplicate_header"
    assert "columns 1 (A) and 4 (D) have the same name" in error.message
    assert "2008" not in error.message
    assert "Amara" not in error.message


def test_duplicate_header_names_past_column_z_are_lettered_as_in_a_spreadsheet() -> None:
    header = ",".join([f"c{i}" for i in range(1, 27)] + ["Okafor", " OKAFOR "])
    error = refused(f"{header}\n{','.join(['1'] * 28)}\n".encode())
    assert "columns 27 (AA) and 28 (AB) have the same name" in error.message
    assert "okafor" not in error.message.lower()


def test_an_empty_header_cell_is_named_by_position_not_by_its_neighbours() -> None:
    error = refused(b"Amara,,Okafor\n1,2,3\n")
    assert error.code == "empty_header"
    assert "column 2 (B) has no name" in error.message
    assert "Amara" not in error.message
    assert "Okafor" not in error.message


def test_a_workbook_without_a_header_row_is_not_quoted_either() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Amara", dt.date(2008, 3, 14), "N1 9GU", dt.date(2008, 3, 14)])
    sheet.append(["René", dt.date(2009, 1, 2), "E8 1DY", dt.date(2009, 1, 2)])
    buffer = io.BytesIO()
    workbook.save(buffer)
    error = refused(buffer.getvalue(), "extract.xlsx")
    assert error.code == "duplicate_header"
    assert "columns 2 (B) and 4 (D)" in error.message
    for value in ("2008", "Amara", "N1 9GU"):
        assert value not in error.message


@pytest.mark.parametrize(
    ("names", "code", "position"),
    [
        (["Okafor", "n", "OKAFOR "], "duplicate_header", "columns 1 (A) and 3 (C)"),
        (["n", "Amara Okafor"], "unsupported_column_type", "column 2 (B)"),
    ],
)
def test_parquet_column_names_are_not_quoted(names: list[str], code: str, position: str) -> None:
    # a frame written without a header can carry values as its column names
    arrays = [pa.array(["x"]) for _ in names]
    if code == "unsupported_column_type":
        arrays[-1] = pa.array([[1, 2]])
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_arrays(arrays, names=names), buffer)
    error = refused(buffer.getvalue(), "extract.parquet")
    assert error.code == code
    assert position in error.message
    assert "okafor" not in error.message.lower()


def test_a_workbook_cell_openpyxl_cannot_read_is_not_quoted() -> None:
    # a number cell holding text: openpyxl's error quotes it ("could not convert ... 'Amara'")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["forename", "age"])
    sheet.append(["x", 15])
    buffer = io.BytesIO()
    workbook.save(buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    damaged = io.BytesIO()
    with zipfile.ZipFile(damaged, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            part = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                part = part.replace(b"<v>15</v>", b"<v>Amara Okafor</v>")
                assert b"Amara Okafor" in part
            target.writestr(info.filename, part)
    error = refused(damaged.getvalue(), "extract.xlsx")
    assert error.code == "unreadable_workbook"
    assert "Amara" not in str(error)


def test_reading_a_csv_does_not_import_pyarrow() -> None:
    # pyarrow alone costs a hub process ~80 MB of memory (issue 2: peak RSS under 300 MB)
    script = (
        "import io, sys\n"
        "from adapters.readers import open_table\n"
        "import privacy.matchkeys\n"
        "table = open_table(io.BytesIO(b'forename,surname\\nAmara,Okafor\\n'), 'x.csv')\n"
        "assert [b.height for b in table.batches] == [1]\n"
        "print('pyarrow' in sys.modules)\n"
    )
    assert python_output(script).strip() == "False"


class _EndlessRows:
    """A read-only source: a header, a few rows, then one quote that never closes followed by
    up to ``limit`` bytes of rows; counts what the reader took."""

    def __init__(self, limit: int) -> None:
        self._head = b"forename,surname\n" + b"Amara,Okafor\n" * 5 + b'"'
        self._row = b"Amara,Okafor\n" * 4096
        self._limit = limit
        self.taken = 0

    def read(self, size: int = -1) -> bytes:
        if self._head:
            piece, self._head = self._head, b""
        elif self.taken >= self._limit:
            piece = b""
        else:
            piece = self._row
        self.taken += len(piece)
        return piece


def test_a_quote_never_closed_is_refused_without_reading_the_rest_of_the_file() -> None:
    source = _EndlessRows(limit=200 * 1024 * 1024)
    with pytest.raises(ReadError) as refusal:
        table = open_table(source, "extract.csv")  # type: ignore[arg-type]
        for _ in table.batches:
            pass
    assert refusal.value.code == "unreadable_csv"
    assert "row 7 " in refusal.value.message  # header row 1, five good rows, then row 7
    assert "Amara" not in refusal.value.message
    assert source.taken < 32 * 1024 * 1024, "the reader must stop near the record size limit"


# ------------------------------------------------------------------ what spreadsheets add


@pytest.mark.parametrize("delimiter", [";", ",", "|", "\t"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_excel_delimiter_hint_line_is_skipped_and_obeyed(delimiter: str, newline: str) -> None:
    # Excel writes "sep=;" first when asked to; a comma inside a cell must stay in the cell
    rows = [["Forename", "Surname"], ["Amara", "Okafor, Jr"], ["René", "Ní Bhriain"]]
    if delimiter == ",":
        rows[1][1] = "Okafor Jr"
    lines = [f"sep={delimiter}", *(delimiter.join(row) for row in rows)]
    frame = open_bytes((newline.join(lines) + newline).encode())
    assert frame.columns == ["forename", "surname"]
    assert frame.rows() == [tuple(row) for row in rows[1:]]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252"])
def test_excel_delimiter_hint_in_any_accepted_encoding(encoding: str) -> None:
    frame = open_bytes("sep=;\r\nForename;Surname\r\nZoë;Okafor\r\n".encode(encoding))
    assert frame.rows() == [("Zoë", "Okafor")]


def test_rows_after_a_delimiter_hint_keep_the_numbers_excel_shows() -> None:
    # Excel hides the sep= line, so the header is row 1 there and the short row is row 3
    error = refused(b"sep=;\nforename;surname\nAmara;Okafor\nSecretname\n")
    assert error.code == "ragged_row"
    assert "row 3 " in error.message
    assert "Secretname" not in error.message
    # and the lenient reader (a quote inside an unquoted cell) counts the same way
    error = refused(b'sep=;\nforename;surname\nAm"ara;Okafor\nSecretname\n')
    assert error.code == "ragged_row"
    assert "row 3 " in error.message


def test_a_file_holding_only_a_delimiter_hint_is_empty() -> None:
    assert refused(b"sep=;\r\n").code == "empty_file"
    assert refused(b"sep=;\r\nforename;surname\r\n").code == "no_rows"


def _workbook(*sheets: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    for index, rows in enumerate(sheets):
        sheet = first if index == 0 else workbook.create_sheet(f"Sheet{index + 1}")
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


EXTRACT_ROWS: list[list[object]] = [["Forename", "Surname"], ["Amara", "Secretname"]]


def test_xlsx_with_the_extract_on_a_later_sheet_says_to_move_it_to_the_first() -> None:
    error = refused(_workbook([], EXTRACT_ROWS), "extract.xlsx")
    assert error.code == "empty_file"
    assert "only the first worksheet" in error.message
    assert "move the extract" in error.message
    assert "Sheet2" not in error.message
    assert "Secretname" not in error.message


def test_xlsx_with_only_a_header_on_the_first_sheet_says_only_it_is_read() -> None:
    error = refused(_workbook([["Forename", "Surname"]], EXTRACT_ROWS), "extract.xlsx")
    assert error.code == "no_rows"
    assert "first worksheet has a header but no data rows" in error.message
    assert "only the first worksheet" in error.message


def test_xlsx_with_one_empty_sheet_keeps_the_plain_messages() -> None:
    assert refused(_workbook([]), "extract.xlsx").message == (
        "the first worksheet is empty; put the extract there"
    )
    header_only = refused(_workbook([["Forename", "Surname"]]), "extract.xlsx")
    assert header_only.code == "no_rows"
    assert "only the first worksheet" not in header_only.message


@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_xlsx_whose_first_sheet_is_hidden_is_refused_not_read_unseen(state: str) -> None:
    # Excel shows the visible sheet; storing the hidden one's rows would store what the
    # officer never saw.
    workbook = openpyxl.load_workbook(io.BytesIO(_workbook([["Forename"], ["Old"]], EXTRACT_ROWS)))
    workbook.worksheets[0].sheet_state = state
    workbook.active = 1
    buffer = io.BytesIO()
    workbook.save(buffer)
    error = refused(buffer.getvalue(), "extract.xlsx")
    assert error.code == "hidden_worksheet"
    assert "first worksheet is hidden" in error.message and "Old" not in error.message


def test_xlsx_extract_on_the_first_of_several_sheets_is_read() -> None:
    frame = open_bytes(_workbook(EXTRACT_ROWS, [["Other"], ["x"]]), "extract.xlsx")
    assert frame.rows() == [("Amara", "Secretname")]


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        (
            "extract.xls",
            "Excel 97-2003 .xls files are not accepted; open it in Excel and save as .xlsx "
            "(Excel Workbook) or CSV UTF-8",
        ),
        ("extract.XLSM", "macro-enabled Excel .xlsm workbooks are not accepted"),
        ("extract.xlsb", "Excel binary .xlsb workbooks are not accepted"),
        ("extract.ods", "OpenDocument .ods spreadsheets are not accepted"),
    ],
)
def test_spreadsheet_formats_not_accepted_say_how_to_convert(filename: str, expected: str) -> None:
    # real bytes of the kind: an OLE compound file for .xls, a zip for the others
    ole_header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    data = ole_header if filename.endswith(".xls") else _workbook(EXTRACT_ROWS)
    error = refused(data, filename)
    assert error.code == "unsupported_format"
    assert error.message.startswith(expected)
    assert "save as .xlsx (Excel Workbook) or CSV UTF-8" in error.message
