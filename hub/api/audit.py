"""Audit routes: signed checkpoints, events, inclusion and consistency proofs, export, key.

Every route here is guarded by ``authorize("audit.read")`` (see hub/api/app.py), which records
the reader, their organisation and the decision in the audit trail before anything is returned.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from hub.api.deps import get_hub
from hub.audit.events import RECORD_FIELDS
from hub.audit.ledger import (
    EventFilter,
    LedgerError,
    NoteSigner,
    consistency_proof,
    inclusion_proof,
    iter_export,
    make_checkpoint,
    select_events,
    tree_size,
)
from hub.errors import BadRequest
from hub.services import Hub

router = APIRouter(prefix="/v1/audit", tags=["audit"])
HubDep = Annotated[Hub, Depends(get_hub)]
MAX_PAGE = 1000
MAX_INDEX = 2**62
"""Largest event index or tree size a request may name: larger numbers overflow the database's
64-bit integers, and no ledger will ever hold this many events."""


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def note_signer(hub: Hub) -> NoteSigner:
    return NoteSigner.from_key_file(hub.settings.audit_origin, hub.settings.signing_key_file)


def _bad(error: LedgerError) -> BadRequest:
    return BadRequest(error.code, error.message)


@router.get("/key")
def audit_key(hub: HubDep) -> dict[str, Any]:
    """The key that signs checkpoints: a C2SP verifier key (``<name>+<hash>+<key>``)."""
    signer = note_signer(hub)
    return {
        "origin": signer.name,
        "key_name": signer.name,
        "verifier_key": signer.verifier_key(),
        "jwk": hub.signer.public_jwk(),
    }


@router.get(
    "/checkpoint",
    responses={200: {"content": {"text/plain": {}, "application/json": {}}}},
)
def checkpoint(
    request: Request, hub: HubDep, format: Literal["note", "json"] | None = None
) -> Response:
    """The latest signed checkpoint (signed note, text/plain), made now if the log has grown.
    ``?format=json`` or ``Accept: application/json`` for JSON."""
    stored = make_checkpoint(hub.engine, note_signer(hub))
    wants_json = format == "json" or (
        format is None and "application/json" in request.headers.get("accept", "")
    )
    if wants_json:
        body = {
            "origin": stored.origin,
            "size": stored.size,
            "root": _b64(stored.root),
            "note": stored.note,
            "created_at": stored.created_at.isoformat(),
        }
        return Response(json.dumps(body), media_type="application/json")
    return PlainTextResponse(stored.note, media_type="text/plain; charset=utf-8")


@router.get("/events")
def events(
    request: Request,
    hub: HubDep,
    actor: str | None = None,
    organisation: str | None = None,
    action: str | None = None,
    agreement: str | None = None,
    decision: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[
        int | None, Query(ge=0, le=MAX_INDEX, description="next_cursor of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> dict[str, Any]:
    """Events in index order, filtered; page with ``cursor`` (the previous ``next_cursor``)."""
    where = EventFilter(actor, organisation, action, agreement, decision, since, until)
    with hub.engine.connect() as connection:
        page = select_events(
            connection, where, after=None if cursor is None else cursor - 1, limit=limit + 1
        )
    more = len(page) > limit
    page = page[:limit]
    return {
        "events": page,
        "next_cursor": page[-1]["index"] + 1 if more and page else None,
    }


@router.get("/proof/inclusion")
def proof_inclusion(
    hub: HubDep,
    index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    size: Annotated[
        int | None, Query(ge=0, le=MAX_INDEX, description="tree size; default: now")
    ] = None,
) -> dict[str, Any]:
    with hub.engine.connect() as connection:
        try:
            proof = inclusion_proof(
                connection, index, tree_size(connection) if size is None else size
            )
        except LedgerError as error:
            raise _bad(error) from None
    return {
        "index": proof.index,
        "size": proof.size,
        "leaf_hash": _b64(proof.leaf_hash),
        "root": _b64(proof.root),
        "proof": [_b64(p) for p in proof.proof],
    }


@router.get("/proof/consistency")
def proof_consistency(
    hub: HubDep,
    first: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    second: Annotated[
        int | None, Query(ge=0, le=MAX_INDEX, description="tree size; default: now")
    ] = None,
) -> dict[str, Any]:
    with hub.engine.connect() as connection:
        try:
            proof = consistency_proof(
                connection, first, tree_size(connection) if second is None else second
            )
        except LedgerError as error:
            raise _bad(error) from None
    return {
        "first": proof.first,
        "second": proof.second,
        "first_root": _b64(proof.first_root),
        "second_root": _b64(proof.second_root),
        "proof": [_b64(p) for p in proof.proof],
    }


def jsonl_lines(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    for record in records:
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


# A cell a spreadsheet would run as a formula (OWASP's "CSV injection"): an event's text can
# come from a caller (a request id, a reason), and IG leads open this export in Excel.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_cell(value: Any) -> Any:
    """``value`` as a CSV cell a spreadsheet shows as text: a leading ``'`` before a formula
    start (the JSON Lines export, which ``hub audit verify`` checks, keeps values as stored)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_lines(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*RECORD_FIELDS, "leaf_hash"])
    for count, record in enumerate(records, 1):
        writer.writerow([_spreadsheet_cell(record[f]) for f in (*RECORD_FIELDS, "leaf_hash")])
        if count % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get("/export")
def export(
    request: Request, hub: HubDep, format: Literal["jsonl", "csv"] = "jsonl"
) -> StreamingResponse:
    """Every event, streamed: JSON Lines (verifiable offline with ``hub audit verify``) or CSV."""
    records = iter_export(hub.engine)
    if format == "csv":
        return StreamingResponse(
            csv_lines(records),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
    return StreamingResponse(
        jsonl_lines(records),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit.jsonl"'},
    )
