"""The embedded OAuth 2.0 authorization server: authlib's framework-agnostic server, wrapped.

Only the client-credentials grant (RFC 6749 section 4.4) is offered. Clients authenticate with
a secret (HTTP Basic or form fields) or with a signed JWT (RFC 7523 ``private_key_jwt``).
An unknown client and a wrong secret get the same message, after the same scrypt work.
authlib is synchronous: the API calls ``create_token_response`` in a worker thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidClientError,
    InvalidScopeError,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import extract_basic_authorization, scope_to_list
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwk, jwt
from joserfc.errors import JoseError
from sqlalchemy import Engine

from hub.audit import AuditEvent, append_event
from hub.auth.clients import Client, ClientStore
from hub.auth.secrets import verify_secret
from hub.auth.tokens import TokenIssuer
from policies import scopes_for_role

# authlib logs issued tokens at DEBUG ("Issue token %r ..."): tokens never reach a log here,
# whatever level the operator sets for the root logger.
logging.getLogger("authlib").setLevel(logging.WARNING)

BAD_CLIENT = (
    "Client authentication failed: unknown client, wrong secret or revoked client. Check the "
    "client id and secret (HUB_CLIENT_ID / HUB_CLIENT_SECRET) or ask the hub's operator."
)
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]
ASSERTION_ALGORITHMS = ["Ed25519", "ES256", "RS256", "PS256"]


class HubOAuthClient(ClientMixin):  # type: ignore[misc]
    def __init__(self, client: Client) -> None:
        self.client = client

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        allowed = scopes_for_role(self.client.role)
        return " ".join(s for s in scope_to_list(scope) or [] if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return verify_secret(client_secret, self.client.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in self.client.auth_methods

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """A token request as authlib wants it, built from the ASGI request's parts."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], body: bytes) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        self.payload = FormPayload(pairs)

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data


def _basic_credentials(headers: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Client id and secret of an HTTP Basic header; none when they are not base64 of UTF-8
    text (authlib would raise, and the request would fail instead of being refused)."""
    try:
        client_id, secret = extract_basic_authorization(headers)
    except ValueError:  # UnicodeDecodeError, binascii.Error
        return None, None
    return client_id, secret


def _check_secret(store: ClientStore, client_id: str, secret: str) -> HubOAuthClient:
    client = store.get(client_id) if len(client_id) <= 64 else None
    stored = client.secret_hash if client and client.revoked_at is None else None
    if not verify_secret(secret, stored) or client is None:
        raise InvalidClientError(description=BAD_CLIENT, status_code=401)
    return HubOAuthClient(client)


class HubClientCredentialsGrant(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = [*SECRET_METHODS, "private_key_jwt"]

    def validate_requested_scope(self) -> None:
        client: HubOAuthClient = self.request.client
        requested = set(scope_to_list(self.request.payload.scope) or [])
        allowed = scopes_for_role(client.client.role)
        refused = sorted(requested - allowed)
        if refused:
            raise InvalidScopeError(
                description=f"A {client.client.role} client may not have scope "
                f"{' '.join(refused)}; it may ask for: {' '.join(sorted(allowed))}."
            )


class PrivateKeyJWT(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, audiences: list[str]) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self._audiences = audiences
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def get_audiences(self) -> list[str]:
        return self._audiences

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        # A replayed assertion is refused while it could still be valid (until its exp).
        now = time.time()
        key = f"{claims['sub']}:{jti}"
        with self._lock:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
            if key in self._seen:
                return False
            self._seen[key] = float(claims.get("exp", now + 600)) + 60
        return True

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        # authlib's default decodes with joserfc's "recommended" list, which lacks Ed25519.
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except JoseError:
            raise InvalidClientError(description=BAD_CLIENT) from None
        self.verify_claims(token.claims)
        return token.claims

    def resolve_client_public_key(self, client: HubOAuthClient) -> jwk.Key:
        if not client.client.public_jwk:
            raise InvalidClientError(description=BAD_CLIENT)
        return jwk.import_key(client.client.public_jwk)


class HubAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, engine: Engine, issuer: TokenIssuer, token_endpoint: str) -> None:
        super().__init__(scopes_supported=None)
        self._engine = engine
        self._store = ClientStore(engine)
        self._issuer = issuer
        self.register_grant(HubClientCredentialsGrant)
        self.register_token_generator("client_credentials", self._generate_token)
        store = self._store
        self.register_client_auth_method(
            "client_secret_basic",
            lambda _query, request: self._basic(store, request),
        )
        self.register_client_auth_method(
            "client_secret_post",
            lambda _query, request: self._post(store, request),
        )
        self.register_client_auth_method(
            "private_key_jwt", PrivateKeyJWT([token_endpoint, issuer.issuer])
        )

    @staticmethod
    def _basic(store: ClientStore, request: OAuth2Request) -> HubOAuthClient | None:
        client_id, secret = _basic_credentials(request.headers)
        if not client_id or secret is None:
            return None
        return _check_secret(store, client_id, secret)

    @staticmethod
    def _post(store: ClientStore, request: OAuth2Request) -> HubOAuthClient | None:
        client_id = request.form.get("client_id")
        secret = request.form.get("client_secret")
        if not client_id or secret is None:
            return None
        return _check_secret(store, client_id, secret)

    def query_client(self, client_id: str) -> HubOAuthClient | None:
        client = self._store.get(client_id) if len(client_id) <= 64 else None
        if client is None or client.revoked_at is not None:
            return None
        return HubOAuthClient(client)

    def _generate_token(
        self,
        grant_type: str,
        client: HubOAuthClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        role = client.client.role
        scopes = scope_to_list(scope) if scope else sorted(scopes_for_role(role))
        token = self._issuer.mint(
            client_id=client.client.client_id,
            role=role,
            organisation=client.client.organisation,
            scopes=list(scopes),
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self._issuer.lifetime,
            "scope": " ".join(scopes),
        }

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        # JWTs are not stored; the issue is recorded (never the token itself).
        client: Client = request.client.client
        self._record(
            "allow",
            f"issued a token with scope {token['scope']!r} by {request.auth_method}",
            actor=client.client_id,
            organisation=client.organisation,
            role=client.role,
        )

    def handle_error_response(self, request: OAuth2Request, error: Any) -> Any:
        actor = request.payload.client_id if request.payload else None
        if not actor:
            actor, _ = _basic_credentials(request.headers)
        self._record(
            "deny",
            f"token refused: {error.error}",
            actor=(actor or "")[:64] or None,
        )
        return super().handle_error_response(request, error)

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def _record(
        self,
        decision: str,
        reason: str,
        *,
        actor: str | None,
        organisation: str | None = None,
        role: str | None = None,
    ) -> None:
        with self._engine.begin() as connection:
            append_event(
                connection,
                AuditEvent(
                    action="token.issue",
                    decision=decision,
                    reason=reason,
                    actor=actor,
                    organisation=organisation,
                    role=role,
                    resource="oauth/token",
                ),
            )
