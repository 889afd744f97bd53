"""The FastAPI application: routes are thin; the work is in ``hub.registry`` and ``hub.ingest``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.api import agreements, clients, linkage, oauth, queries, uploads
from hub.api.audit import note_signer
from hub.api.audit import router as audit_router
from hub.api.deps import Authorized, authorize
from hub.api.errors import ContainErrors
from hub.api.limits import LimitRequestBodies
from hub.audit.schedule import periodic_checkpoints
from hub.auth import Identity
from hub.errors import HubError
from hub.services import Hub, build_hub
from hub.settings import Settings

log = logging.getLogger("hub.api")

_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    404: ("not_found", "There is no such endpoint; the API is listed at /docs."),
    405: ("method_not_allowed", "This endpoint does not take that method; see /docs."),
}


def create_app(settings: Settings | None = None, hub: Hub | None = None) -> FastAPI:
    hub = hub or build_hub(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        interval = hub.settings.audit_checkpoint_interval_seconds
        async with periodic_checkpoints(interval, hub.engine, note_signer(hub)):
            yield

    app = FastAPI(
        lifespan=lifespan,
        title="vru-hub",
        version="0.1.0",
        description=(
            "Secure data-sharing hub for violence reduction partnerships. Agencies upload "
            "extracts under data-sharing agreements; identifiers are pseudonymised at ingest."
        ),
    )
    app.state.hub = hub
    app.state.identity = Identity(hub.settings, hub.engine)
    app.add_middleware(LimitRequestBodies, max_bytes=hub.settings.max_request_bytes)
    app.add_middleware(ContainErrors)

    @app.exception_handler(HubError)
    async def _hub_error(_request: Request, error: HubError) -> JSONResponse:
        headers = getattr(error, "headers", None)
        return JSONResponse(error.to_body(), status_code=error.status_code, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        # Routing errors (no such path, wrong method) in the hub's own error shape.
        code, message = _HTTP_ERRORS.get(
            error.status_code, ("http_error", str(error.detail or "The request failed."))
        )
        body = {"error": {"code": code, "message": message}}
        return JSONResponse(body, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input; a request must never be echoed back.
        problems = [
            {"field": ".".join(str(part) for part in e["loc"]), "message": e["msg"]}
            for e in error.errors()
        ]
        body: dict[str, Any] = {
            "error": {
                "code": "invalid_request",
                "message": "The request is not valid.",
                "details": problems,
            }
        }
        return JSONResponse(body, status_code=422)

    @app.get("/health", tags=["hub"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/keys", tags=["hub"])
    def keys(_auth: Annotated[Authorized, Depends(authorize("keys.read"))]) -> dict[str, Any]:
        """The hub's public key that signs upload receipts (JWK set)."""
        return {"keys": [hub.signer.public_jwk()]}

    app.include_router(agreements.router)
    app.include_router(uploads.router)
    app.include_router(linkage.router)
    app.include_router(queries.router)
    # The audit router's endpoints all read the audit trail: one policy decision guards them.
    app.include_router(audit_router, dependencies=[Depends(authorize("audit.read"))])
    app.include_router(clients.router)
    app.include_router(oauth.router)
    return app
