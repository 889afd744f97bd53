"""A standard OAuth 2.0 client library (authlib's httpx client), not the hub's code, gets a
token from a real hub process and calls the API with it."""

from __future__ import annotations

from authlib.integrations.httpx_client import OAuth2Client

from hub.auth.clients import ClientStore
from hub.services import Hub
from tests.conftest import HubProcess


def test_authlib_httpx_client_credentials(hub: Hub, hub_process: HubProcess) -> None:
    client, secret = ClientStore(hub.engine).create(organisation="mopac-vru", role="analyst")
    with OAuth2Client(
        client_id=client.client_id,
        client_secret=secret,
        token_endpoint=f"{hub_process.url}/oauth/token",
        scope="agreements:read",
    ) as oauth:
        token = oauth.fetch_token(grant_type="client_credentials")
        assert token["token_type"] == "Bearer" and token["scope"] == "agreements:read"
        listed = oauth.get(f"{hub_process.url}/v1/agreements")
        assert listed.status_code == 200, listed.text
        # An analyst of mopac-vru sees the agreements naming mopac-vru, and no others.
        assert {a["id"] for a in listed.json()} == {
            "london-vru-partnership",
            "southwark-yjs-exclusions",
        }
        refused = oauth.post(
            f"{hub_process.url}/v1/agreements/london-vru-partnership/suspend",
            json={"reason": "not mine to suspend"},
        )
        assert refused.status_code == 403
