"""Access tokens and the token endpoint: every kind of bad token is refused with a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import statistics
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import OKPKey
from sqlalchemy import func, select

from hub.api.app import create_app
from hub.auth.clients import ClientStore
from hub.auth.identity import UNAUTHENTICATED_PER_MINUTE
from hub.auth.tokens import TokenIssuer
from hub.models import AuditEventRow
from hub.services import Hub
from tests.adapters.adapter_extracts import extract_csv
from tests.conftest import Tokens

AGREEMENT_URL = "/v1/agreements/london-vru-partnership"


@pytest.fixture
def api(hub: Hub) -> Iterator[TestClient]:
    # https: authlib refuses token requests over plain http except on loopback.
    with TestClient(create_app(hub=hub), base_url="https://testserver") as client:
        yield client


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def get(api: TestClient, token: str | None) -> object:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return api.get(AGREEMENT_URL, headers=headers)


def assert_401(response: object, words: str) -> None:
    assert response.status_code == 401, response.text  # type: ignore[attr-defined]
    assert response.headers["www-authenticate"].startswith("Bearer")  # type: ignore[attr-defined]
    assert words in response.json()["error"]["message"]  # type: ignore[attr-defined]


def test_a_good_token_works_and_is_rfc9068(api: TestClient, tokens: Tokens) -> None:
    token = tokens.token("ig_lead", "partnership")
    assert get(api, token).status_code == 200  # type: ignore[attr-defined]
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["typ"] == "at+jwt" and header["alg"] == "Ed25519"
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert {"iss", "aud", "sub", "client_id", "iat", "exp", "jti", "scope"} <= set(claims)
    assert claims["role"] == "ig_lead" and claims["organisation"] == "partnership"
    assert claims["exp"] - claims["iat"] == 900


def test_missing_and_malformed_tokens(api: TestClient) -> None:
    assert_401(get(api, None), "needs an access token")
    assert_401(get(api, "not-a-jwt"), "not a well-formed JWT")


def test_expired_and_not_yet_valid_tokens(api: TestClient, tokens: Tokens) -> None:
    client_id = tokens.client_id("ig_lead", "partnership")
    mint = lambda now: tokens.issuer.mint(  # noqa: E731
        client_id=client_id,
        role="ig_lead",
        organisation="partnership",
        scopes=["agreements:read"],
        lifetime=60,
        now=now,
    )
    assert_401(get(api, mint(int(time.time()) - 3600)), "expired")
    assert_401(get(api, mint(int(time.time()) + 3600)), "not acceptable")


def test_wrong_audience_and_wrong_issuer(api: TestClient, hub: Hub, tokens: Tokens) -> None:
    client_id = tokens.client_id("ig_lead", "partnership")
    for issuer, audience, words in [
        (hub.settings.issuer, "another-api", "not acceptable"),
        ("https://evil.example", hub.settings.token_audience, "not issued by this hub"),
    ]:
        other = TokenIssuer(
            hub.settings.token_signing_key_file, issuer=issuer, audience=audience, lifetime=60
        )
        token = other.mint(
            client_id=client_id,
            role="ig_lead",
            organisation="partnership",
            scopes=["agreements:read"],
        )
        assert_401(get(api, token), words)


def test_alg_none_hs256_with_the_public_key_and_an_edited_payload(
    api: TestClient, hub: Hub, tokens: Tokens
) -> None:
    good = tokens.token("ig_lead", "met-police")
    header_b64, payload_b64, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))

    none_header = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
    assert_401(get(api, f"{none_header}.{payload_b64}."), "not acceptable")

    public = api.get("/.well-known/jwks.json").json()["keys"][0]
    for secret in (public["x"].encode(), base64.urlsafe_b64decode(public["x"] + "=")):
        hs_header = b64(
            json.dumps({"alg": "HS256", "typ": "at+jwt", "kid": public["kid"]}).encode()
        )
        signing_input = f"{hs_header}.{payload_b64}".encode()
        mac = b64(hmac.new(secret, signing_input, hashlib.sha256).digest())
        assert_401(get(api, f"{hs_header}.{payload_b64}.{mac}"), "not acceptable")

    edited = b64(json.dumps({**claims, "organisation": "partnership"}).encode())
    assert_401(get(api, f"{header_b64}.{edited}.{signature}"), "signature")


def test_a_revoked_clients_live_tokens_stop_working(
    api: TestClient, hub: Hub, tokens: Tokens
) -> None:
    token = tokens.token("ig_lead", "partnership")
    assert get(api, token).status_code == 200  # type: ignore[attr-defined]
    ClientStore(hub.engine).revoke(tokens.client_id("ig_lead", "partnership"))
    assert_401(get(api, token), "revoked")


def token_request(api: TestClient, client_id: str, secret: str, scope: str | None = None) -> object:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    return api.post("/oauth/token", data=data, auth=(client_id, secret))


def test_the_token_endpoint_issues_scoped_tokens_and_refuses_other_scopes(
    api: TestClient, hub: Hub
) -> None:
    client, secret = ClientStore(hub.engine).create(organisation="met-police", role="data_officer")
    assert secret
    response = token_request(api, client.client_id, secret)
    assert response.status_code == 200, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert set(body["scope"].split()) == {"uploads:write", "uploads:read", "agreements:read"}
    narrow = token_request(api, client.client_id, secret, "uploads:read").json()  # type: ignore[attr-defined]
    assert narrow["scope"] == "uploads:read"

    refused = token_request(api, client.client_id, secret, "uploads:read clients:admin")
    assert refused.status_code == 400  # type: ignore[attr-defined]
    assert refused.json()["error"] == "invalid_scope"  # type: ignore[attr-defined]
    assert "access_token" not in refused.json()  # type: ignore[attr-defined]
    assert "clients:admin" in refused.json()["error_description"]  # type: ignore[attr-defined]


def test_wrong_secret_and_unknown_client_look_the_same(api: TestClient, hub: Hub) -> None:
    client, _secret = ClientStore(hub.engine).create(organisation="met-police", role="data_officer")
    timings: dict[str, list[float]] = {"wrong": [], "unknown": []}
    bodies = {}
    for _ in range(3):
        for kind, client_id in (("wrong", client.client_id), ("unknown", "nobody.analyst.1")):
            started = time.perf_counter()
            response = token_request(api, client_id, "not-the-secret")
            timings[kind].append(time.perf_counter() - started)
            bodies[kind] = (response.status_code, response.json())  # type: ignore[attr-defined]
    assert bodies["wrong"] == bodies["unknown"]
    assert bodies["wrong"][0] == 401 and bodies["wrong"][1]["error"] == "invalid_client"
    wrong, unknown = statistics.median(timings["wrong"]), statistics.median(timings["unknown"])
    assert 0.5 < unknown / wrong < 2.0, timings  # both paths do the scrypt work


def test_an_admin_cannot_revoke_the_client_it_is_using(
    api: TestClient, hub: Hub, tokens: Tokens
) -> None:
    headers = tokens.headers("hub_admin", "hub-operator")
    own = tokens.client_id("hub_admin", "hub-operator")
    refused = api.post(f"/v1/clients/{own}/revoke", headers=headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "own_client"
    assert api.get("/v1/clients", headers=headers).status_code == 200  # still works
    other, _secret = ClientStore(hub.engine).create(organisation="met-police", role="analyst")
    assert api.post(f"/v1/clients/{other.client_id}/revoke", headers=headers).status_code == 200


def test_basic_credentials_that_are_not_utf8_text_are_an_invalid_client(api: TestClient) -> None:
    for credentials in (base64.b64encode(b"\xff:x"), b"%%%not-base64"):
        response = api.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": "Basic " + credentials.decode()},
        )
        assert response.status_code in (400, 401), response.text
        assert response.json()["error"] in ("invalid_client", "invalid_request")


def test_private_key_jwt_client_authentication(api: TestClient, hub: Hub) -> None:
    key = OKPKey.generate_key("Ed25519")
    client, secret = ClientStore(hub.engine).create(
        organisation="met-police",
        role="data_officer",
        public_jwk=key.as_dict(private=False),
        with_secret=False,
    )
    assert secret is None
    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "Ed25519"},
        {
            "iss": client.client_id,
            "sub": client.client_id,
            "jti": "a1",
            "iat": now,
            "exp": now + 60,
            "aud": hub.settings.issuer + "/oauth/token",
        },
        key,
        algorithms=["Ed25519"],
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    response = api.post("/oauth/token", data=form)
    assert response.status_code == 200, response.text
    assert get(api, response.json()["access_token"]).status_code == 200  # type: ignore[attr-defined]
    replay = api.post("/oauth/token", data=form)
    assert replay.status_code in (400, 401) and replay.json()["error"] == "invalid_client"


def test_a_data_officer_cannot_upload_another_agencys_dataset(
    api: TestClient, hub: Hub, tokens: Tokens
) -> None:
    response = api.post(
        "/v1/agreements/london-vru-partnership/datasets/police_violence_offences/uploads",
        files={"file": ("x.csv", extract_csv("police_violence_offences"))},
        headers=tokens.headers("data_officer", "nhs-england-london"),
    )
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert "police_violence_offences is provided by met-police" in message
    assert "information-governance lead" in message
    with hub.engine.connect() as connection:
        events = connection.execute(
            select(AuditEventRow.decision, AuditEventRow.reason).where(
                AuditEventRow.action == "upload.create"
            )
        ).all()
    assert [e.decision for e in events] == ["deny"]
    assert "met-police" in events[0].reason


def test_every_decision_is_audited_without_the_token(
    api: TestClient, hub: Hub, tokens: Tokens
) -> None:
    token = tokens.token("ig_lead", "partnership")
    get(api, token)
    get(api, None)
    api.post(
        "/v1/agreements/london-vru-partnership/suspend",
        json={"reason": "x" * 10},
        headers=tokens.headers("analyst", "mopac-vru"),
    )
    with hub.engine.connect() as connection:
        rows = connection.execute(
            select(AuditEventRow.action, AuditEventRow.decision, AuditEventRow.reason).order_by(
                AuditEventRow.index
            )
        ).all()
    checked = {"agreement.read", "agreement.suspend"}  # not the fixture's registrations
    decisions = [(r.action, r.decision) for r in rows if r.action in checked]
    assert decisions == [
        ("agreement.read", "allow"),
        ("agreement.read", "deny"),
        ("agreement.suspend", "deny"),
    ]
    assert all(token not in (r.reason or "") for r in rows)


def test_a_request_id_is_kept_only_when_it_is_a_plain_identifier(
    api: TestClient, hub: Hub, tokens: Tokens
) -> None:
    headers = tokens.headers("ig_lead", "partnership")
    for given in ("job-2026.11:7", '=HYPERLINK("http://evil.example","x")', "a" * 65, "a b"):
        api.get(AGREEMENT_URL, headers={**headers, "X-Request-Id": given})
    with hub.engine.connect() as connection:
        ids = (
            connection.execute(
                select(AuditEventRow.request_id)
                .where(AuditEventRow.action == "agreement.read")
                .order_by(AuditEventRow.index)
            )
            .scalars()
            .all()
        )
    assert ids[0] == "job-2026.11:7"
    assert all(len(i) == 32 and i.isalnum() for i in ids[1:])  # replaced by fresh ids
    assert len(set(ids)) == 4


def test_callers_without_a_valid_token_cannot_grow_the_audit_log_at_will(
    api: TestClient, hub: Hub, tokens: Tokens
) -> None:
    def audited() -> int:
        with hub.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(AuditEventRow)).scalar_one()

    before = audited()
    statuses = [
        get(api, None if i % 2 else "not-a-token").status_code  # type: ignore[attr-defined]
        for i in range(UNAUTHENTICATED_PER_MINUTE + 20)
    ]
    assert statuses[:UNAUTHENTICATED_PER_MINUTE] == [401] * UNAUTHENTICATED_PER_MINUTE
    assert set(statuses[UNAUTHENTICATED_PER_MINUTE:]) == {429}
    assert audited() - before == UNAUTHENTICATED_PER_MINUTE  # each 401 audited, no 429
    # a caller with a valid token is not held back by them
    assert get(api, tokens.token("ig_lead", "partnership")).status_code == 200  # type: ignore[attr-defined]


def test_rate_limits_and_body_limits(hub: Hub, tokens: Tokens) -> None:
    hub.settings.rate_limit_burst = 2
    hub.settings.rate_limit_per_minute = 1
    hub.settings.max_request_bytes = 2048
    with TestClient(create_app(hub=hub), base_url="https://testserver") as api:
        token = tokens.token("hub_admin", "hub-operator")
        assert get(api, token).status_code == 200  # type: ignore[attr-defined]
        assert get(api, token).status_code == 200  # type: ignore[attr-defined]
        limited = get(api, token)
        assert limited.status_code == 429  # type: ignore[attr-defined]
        assert int(limited.headers["retry-after"]) >= 1  # type: ignore[attr-defined]
        big = api.post(
            "/v1/agreements/london-vru-partnership/suspend",
            content=b"{" + b" " * 4096 + b"}",
            headers={
                "Authorization": f"Bearer {tokens.token('ig_lead', 'partnership')}",
                "content-type": "application/json",
            },
        )
        assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"


def test_metadata_and_jwks(api: TestClient, hub: Hub) -> None:
    metadata = api.get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == hub.settings.issuer
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    keys = api.get("/.well-known/jwks.json").json()["keys"]
    assert keys[0]["kty"] == "OKP" and "d" not in keys[0]


def test_a_refusal_tells_an_ig_lead_whom_to_ask_and_others_their_ig_lead(
    api: TestClient, tokens: Tokens
) -> None:
    ig_lead = api.get("/v1/budgets", headers=tokens.headers("ig_lead", "met-police"))
    assert ig_lead.status_code == 403, ig_lead.text
    assert "ask the partnership's information-governance lead" in ig_lead.json()["error"]["message"]
    officer = api.get("/v1/budgets", headers=tokens.headers("data_officer", "met-police"))
    assert officer.status_code == 403, officer.text
    assert "ask your organisation's information-governance lead" in officer.json()["error"][
        "message"
    ]
