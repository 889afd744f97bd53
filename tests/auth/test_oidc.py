"""Tokens from an external OpenID Connect issuer that the test runs itself (uvicorn)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.api.app import create_app
from hub.services import Hub
from tests.conftest import free_port


class LocalIssuer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/realms/vru"
        self.keys = [ECKey.generate_key("P-256", {"kid": "k1"})]

        async def metadata(_request: Any) -> JSONResponse:
            return JSONResponse({"issuer": self.url, "jwks_uri": f"{self.url}/certs"})

        async def certs(_request: Any) -> JSONResponse:
            return JSONResponse({"keys": [k.as_dict(private=False) for k in self.keys]})

        app = Starlette(
            routes=[
                Route("/realms/vru/.well-known/openid-configuration", metadata),
                Route("/realms/vru/certs", certs),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        for _ in range(100):
            try:
                httpx.get(f"{self.url}/certs", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)

    def token(self, key: ECKey, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": self.url,
            "aud": "vru-hub",
            "sub": "user-1",
            "iat": now,
            "exp": now + 300,
            **claims,
        }
        return jwt.encode({"alg": "ES256", "kid": key.kid}, body, key, algorithms=["ES256"])


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    server = LocalIssuer()
    server.start()
    yield server
    server.server.should_exit = True
    server.thread.join(5)


def test_keycloak_style_tokens_are_accepted_and_keys_rotate(hub: Hub, issuer: LocalIssuer) -> None:
    hub.settings.oidc_issuer = issuer.url
    hub.settings.oidc_role_claim = "realm_access.roles"
    hub.settings.oidc_role_map = {"vru-analyst": "analyst"}
    app = create_app(hub=hub)
    app.state.identity.external.refetch_interval = 0
    claims = {
        "realm_access": {"roles": ["vru-analyst", "offline_access"]},
        "organisation": "mopac-vru",
    }
    with TestClient(app) as api:

        def call(token: str) -> httpx.Response:
            return api.get(
                "/v1/agreements/london-vru-partnership",
                headers={"Authorization": f"Bearer {token}"},
            )

        assert call(issuer.token(issuer.keys[0], **claims)).status_code == 200
        rotated = ECKey.generate_key("P-256", {"kid": "k2"})
        issuer.keys = [rotated]
        assert call(issuer.token(rotated, **claims)).status_code == 200  # unknown kid: refetch
        assert call(issuer.token(rotated, **{**claims, "aud": "other"})).status_code == 401
        stranger = ECKey.generate_key("P-256", {"kid": "k2"})
        assert call(issuer.token(stranger, **claims)).status_code == 401
        no_role = {"realm_access": {"roles": ["offline_access"]}, "organisation": "mopac-vru"}
        response = call(issuer.token(rotated, **no_role))
        assert response.status_code == 401 and "exactly one hub role" in response.text
        other_org = {**claims, "organisation": "gstt"}
        assert call(issuer.token(rotated, **other_org)).status_code == 403
