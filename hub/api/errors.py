"""Contain unexpected errors: a plain 500 for the caller, a location-only line in the log.

An exception's message may quote request data (a cell value, a header), so neither the caller
nor the log ever sees it: only its type and where it was raised. Starlette's own handler would
re-raise the exception to the server, which logs it in full, so this middleware stops it here.
"""

from __future__ import annotations

import json
import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.logs import describe_error

log = logging.getLogger("hub.api")

INTERNAL_ERROR = json.dumps(
    {"error": {"code": "internal_error", "message": "The hub failed; nothing was stored."}}
).encode()


class ContainErrors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            # the caller went away mid-request (an upload cancelled): nothing was stored, as
            # the upload's transaction was rolled back, and there is no one to answer
            log.info("client disconnected before the request was read in full")
            return
        except Exception as error:
            log.error("unexpected %s", describe_error(error))
            if response_started:
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": INTERNAL_ERROR})
