"""Agreement routes: register, list, show, suspend, export as ODRL."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from agreements import to_odrl
from hub.api.deps import Authorized, authorize, get_hub, summary_facts
from hub.errors import PayloadTooLarge, UnsupportedMediaType
from hub.services import Hub
from policies import Resource

router = APIRouter(prefix="/v1/agreements", tags=["agreements"])
HubDep = Annotated[Hub, Depends(get_hub)]
ListAuth = Annotated[Authorized, Depends(authorize("agreement.list"))]
ReadAuth = Annotated[Authorized, Depends(authorize("agreement.read"))]
RegisterAuth = Annotated[Authorized, Depends(authorize("agreement.register"))]
SuspendAuth = Annotated[Authorized, Depends(authorize("agreement.suspend"))]
MAX_AGREEMENT_BYTES = 1024 * 1024


class SuspendRequest(BaseModel):
    reason: str = Field(min_length=3, max_length=500)


@router.get("")
def list_agreements(hub: HubDep, auth: ListAuth) -> list[dict[str, Any]]:
    """The agreements the caller may read (each one decided by the policy engine)."""
    return [
        summary
        for summary in hub.agreements.list()
        if auth.permits(
            "agreement.read",
            Resource(kind="agreement", id=summary["id"], agreement=summary_facts(summary)),
        )
    ]


@router.post("", status_code=201)
async def register_agreement(request: Request, hub: HubDep, auth: RegisterAuth) -> dict[str, Any]:
    """Register a signed agreement, sent as its YAML or JSON document."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    formats = {
        "application/json": "json",
        "application/yaml": "yaml",
        "application/x-yaml": "yaml",
        "text/yaml": "yaml",
    }
    if content_type not in formats:
        raise UnsupportedMediaType(
            "agreement_format",
            "Send the agreement document as application/json or application/yaml.",
        )
    body = await request.body()
    if len(body) > MAX_AGREEMENT_BYTES:
        raise PayloadTooLarge("agreement_too_large", "An agreement document is at most 1 MiB.")
    source = request.headers.get("x-filename") or "agreement"
    return hub.agreements.register(
        body, source=source, format=formats[content_type], actor=auth.audit_actor
    )


@router.get("/{agreement_id}")
def show_agreement(agreement_id: str, hub: HubDep, _auth: ReadAuth) -> dict[str, Any]:
    return hub.agreements.summary(agreement_id)


@router.get("/{agreement_id}/document")
def agreement_document(agreement_id: str, hub: HubDep, _auth: ReadAuth) -> dict[str, Any]:
    """The agreement exactly as signed (JSON form)."""
    return hub.agreements.get(agreement_id).model_dump(mode="json")


@router.get("/{agreement_id}/odrl")
def agreement_odrl(agreement_id: str, hub: HubDep, _auth: ReadAuth) -> dict[str, Any]:
    """The agreement as W3C ODRL 2.2 JSON-LD, for other governance tools."""
    return to_odrl(hub.agreements.get(agreement_id))


@router.post("/{agreement_id}/suspend")
def suspend_agreement(
    agreement_id: str, request: SuspendRequest, hub: HubDep, auth: SuspendAuth
) -> dict[str, Any]:
    return hub.agreements.suspend(agreement_id, request.reason, actor=auth.audit_actor)
