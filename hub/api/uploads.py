"""Upload routes: send an extract, read a receipt, list and withdraw uploads."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import anyio
from anyio.lowlevel import current_token
from fastapi import APIRouter, BackgroundTasks, Body, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from hub.api.deps import Authorized, authorize, get_hub
from hub.api.multipart import MultipartFile, ThreadPipe
from hub.errors import NotFound, PayloadTooLarge
from hub.models import UploadRow
from hub.services import Hub

router = APIRouter(prefix="/v1", tags=["uploads"])
HubDep = Annotated[Hub, Depends(get_hub)]
CreateAuth = Annotated[Authorized, Depends(authorize("upload.create"))]
ListAuth = Annotated[Authorized, Depends(authorize("upload.list"))]
ReadAuth = Annotated[Authorized, Depends(authorize("upload.read"))]
WithdrawAuth = Annotated[Authorized, Depends(authorize("upload.withdraw"))]

# Multipart framing adds a few hundred bytes around the file.
MULTIPART_OVERHEAD = 64 * 1024


class WithdrawRequest(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


@router.post(
    "/agreements/{agreement_id}/datasets/{dataset}/uploads",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_extract(
    agreement_id: str,
    dataset: str,
    request: Request,
    background: BackgroundTasks,
    hub: HubDep,
    auth: CreateAuth,
) -> dict[str, Any]:
    """Upload one extract (CSV, Excel .xlsx or Parquet) as multipart field ``file``.

    All rows or none are stored; the same file again returns the first receipt.
    """
    agreement = hub.agreements.active_for_upload(agreement_id, dataset)
    declared = int(request.headers.get("content-length") or 0)
    if declared > hub.settings.max_upload_bytes + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(
            "file_too_large",
            f"The file is larger than this hub accepts ({hub.settings.max_upload_bytes:,} "
            "bytes). Split the extract by month and upload each part.",
        )
    body = MultipartFile(request.stream().__aiter__(), request.headers.get("content-type", ""))
    filename = await body.start()
    ingest = partial(
        hub.ingestor.ingest,
        ThreadPipe(body, current_token()),  # type: ignore[arg-type]
        filename=filename,
        agreement=agreement,
        dataset=dataset,
        actor=auth.audit_actor,
    )
    receipt: dict[str, Any] = await anyio.to_thread.run_sync(ingest)
    # Linkage (issue 4) runs after the receipt is sent: the upload is committed and safe, and
    # records not yet linked are picked up again at start if the hub stops before it is done.
    if hub.settings.linkage_in_api:
        background.add_task(hub.linkage.link_upload, receipt["upload_id"])
    return receipt


@router.get("/agreements/{agreement_id}/datasets/{dataset}/uploads")
def list_uploads(
    agreement_id: str, dataset: str, hub: HubDep, _auth: ListAuth
) -> list[dict[str, Any]]:
    hub.agreements.get(agreement_id)  # 404 for an unknown agreement
    with hub.engine.connect() as connection:
        receipts = connection.execute(
            select(UploadRow.receipt)
            .where(
                UploadRow.agreement_id == agreement_id,
                UploadRow.dataset == dataset,
                UploadRow.status != "receiving",
            )
            .order_by(UploadRow.id)
        ).scalars()
        return list(receipts)


@router.get("/uploads/{upload_id}")
def get_upload(upload_id: str, hub: HubDep, _auth: ReadAuth) -> dict[str, Any]:
    with hub.engine.connect() as connection:
        receipt = connection.execute(
            select(UploadRow.receipt).where(
                UploadRow.upload_id == upload_id, UploadRow.status != "receiving"
            )
        ).scalar_one_or_none()
    if receipt is None:
        raise NotFound("upload_not_found", f"There is no upload {upload_id!r}.")
    return dict(receipt)


@router.post("/uploads/{upload_id}/withdraw")
def withdraw_upload(
    upload_id: str,
    hub: HubDep,
    auth: WithdrawAuth,
    request: Annotated[WithdrawRequest | None, Body()] = None,
) -> dict[str, Any]:
    """Delete every row of an upload; the receipt is kept, marked withdrawn."""
    receipt = hub.ingestor.withdraw(
        upload_id, reason=request.reason if request else None, actor=auth.audit_actor
    )
    hub.linkage.after_withdrawal(upload_id)  # issue 4: re-link the persons it touched
    return receipt
