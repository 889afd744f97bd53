"""The authorization server's public endpoints: token, JWKS, RFC 8414 metadata."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from hub.api.deps import TooManyRequests, get_identity
from hub.auth import Identity
from hub.auth.identity import TOKEN_PATH
from hub.auth.server import FormRequest
from hub.errors import PayloadTooLarge

router = APIRouter(tags=["oauth"])
MAX_TOKEN_REQUEST_BYTES = 16 * 1024


@router.post(TOKEN_PATH)
async def token(request: Request, identity: Identity = Depends(get_identity)) -> JSONResponse:  # noqa: B008
    """OAuth 2.0 token endpoint: the client-credentials grant (RFC 6749 section 4.4).

    Authenticate with HTTP Basic (client id and secret), with ``client_id`` and
    ``client_secret`` form fields, or with a ``private_key_jwt`` client assertion (RFC 7523).
    """
    body = await request.body()
    if len(body) > MAX_TOKEN_REQUEST_BYTES:
        raise PayloadTooLarge("request_too_large", "A token request is at most 16 KiB.")
    # Limit by the address as well as the client: the endpoint is reachable without a token.
    client = request.client.host if request.client else "unknown"
    wait = identity.rate_limiter.take(f"token:{client}")
    if wait:
        raise TooManyRequests(wait)
    oauth_request = FormRequest(request.method, str(request.url), request.headers, body)
    status, payload, headers = await anyio.to_thread.run_sync(
        identity.server.create_token_response, oauth_request
    )
    return JSONResponse(payload, status_code=status, headers=dict(headers))


@router.get("/.well-known/jwks.json")
def jwks(identity: Identity = Depends(get_identity)) -> dict[str, Any]:  # noqa: B008
    """The public keys that sign the hub's access tokens."""
    return identity.issuer.jwks()


@router.get("/.well-known/oauth-authorization-server")
def metadata(identity: Identity = Depends(get_identity)) -> dict[str, Any]:  # noqa: B008
    """Authorization server metadata (RFC 8414)."""
    return identity.metadata()
