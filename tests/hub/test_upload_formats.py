"""Excel and Parquet extracts through the API: the same rows, the same receipts as CSV."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator

import openpyxl
import polars as pl
import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.services import Hub
from tests.adapters.adapter_extracts import extract_csv, extract_rows
from tests.conftest import AgencyAuth, Tokens
from tests.hub.helpers import POLICE, post_extract, stored_counts


@pytest.fixture
def client(hub: Hub, tokens: Tokens) -> Iterator[TestClient]:
    with TestClient(create_app(hub=hub)) as test_client:
        test_client.auth = AgencyAuth(tokens)
        yield test_client


def rows(count: int) -> list[dict[str, str]]:
    return extract_rows(POLICE, *({"police_person_id": f"P{i}"} for i in range(count)))


def xlsx_bytes(records: list[dict[str, str]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(records[0]))
    for record in records:
        sheet.append(list(record.values()))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def parquet_bytes(records: list[dict[str, str]]) -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame(records).write_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "encode"), [("extract.xlsx", xlsx_bytes), ("extract.parquet", parquet_bytes)]
)
def test_spreadsheet_and_parquet_uploads_are_stored(
    client: TestClient, hub: Hub, filename: str, encode: object
) -> None:
    data = encode(rows(5))  # type: ignore[operator]
    response = post_extract(client, data, filename=filename)
    assert response.status_code == 201, response.text
    assert response.json()["rows_accepted"] == 5
    assert stored_counts(hub.engine) == (1, 5, 5)


def test_a_formula_cell_in_a_workbook_rejects_its_row(client: TestClient, hub: Hub) -> None:
    records = rows(2)
    records[1]["mps_minor_text"] = '=HYPERLINK("http://evil.example","x")'
    response = post_extract(client, xlsx_bytes(records), filename="extract.xlsx")
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["rows_rejected"] == 1
    assert any(e["code"] == "formula" for e in receipt["errors"])
    assert "HYPERLINK" not in response.text


def test_a_csv_renamed_to_xlsx_is_refused(client: TestClient, hub: Hub) -> None:
    response = post_extract(client, b"a,b\n1,2\n", filename="extract.xlsx")
    assert response.status_code == 422
    assert stored_counts(hub.engine) == (0, 0, 0)


def test_two_files_in_one_upload_store_nothing(client: TestClient, hub: Hub) -> None:
    good = extract_csv(POLICE)
    response = client.post(
        "/v1/agreements/london-vru-partnership/datasets/police_violence_offences/uploads",
        files=[("file", ("a.csv", good)), ("file", ("b.csv", good))],
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "several_files"
    assert stored_counts(hub.engine) == (0, 0, 0)


def test_a_compressed_file_named_csv_is_refused_and_a_path_in_the_name_is_ignored(
    client: TestClient, hub: Hub
) -> None:
    good = extract_csv(POLICE)
    assert post_extract(client, gzip.compress(good)).status_code == 422
    assert stored_counts(hub.engine) == (0, 0, 0)
    response = post_extract(client, good, filename="../../etc/police.csv")
    assert response.status_code == 201
    assert "etc" not in response.text
