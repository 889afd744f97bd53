"""Everything the API needs to know who is calling: tokens, clients, the external issuer."""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode
from typing import Any

from sqlalchemy import Engine

from hub.auth.clients import ClientStore
from hub.auth.oidc import ExternalIssuer
from hub.auth.ratelimit import RateLimiter
from hub.auth.server import HubAuthorizationServer
from hub.auth.tokens import InvalidToken, TokenClaims, TokenIssuer
from hub.settings import Settings

TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a secret)


def _b64json(part: str) -> Any:
    return json.loads(urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims read without verification, only to choose who verifies the token."""
    try:
        header_b64, payload_b64, _signature = token.split(".")
        header, claims = _b64json(header_b64), _b64json(payload_b64)
    except ValueError:
        raise InvalidToken("the token is not a well-formed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidToken("the token is not a well-formed JWT")
    return header, claims


UNAUTHENTICATED_PER_MINUTE = 60


class Identity:
    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.issuer = TokenIssuer(
            settings.token_signing_key_file,
            issuer=settings.issuer,
            audience=settings.token_audience,
            lifetime=settings.token_lifetime_seconds,
        )
        self.external = (
            ExternalIssuer(
                settings.oidc_issuer,
                audience=settings.oidc_audience or settings.token_audience,
                jwks_url=settings.oidc_jwks_url,
                role_claim=settings.oidc_role_claim,
                organisation_claim=settings.oidc_organisation_claim,
                role_map=settings.oidc_role_map,
            )
            if settings.oidc_issuer
            else None
        )
        self.clients = ClientStore(engine)
        self.rate_limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
        # Requests without a valid token, per caller address: each is an audited deny, and the
        # audit ledger is permanent, so one address must not be able to grow it at will.
        self.unauthenticated_limiter = RateLimiter(
            UNAUTHENTICATED_PER_MINUTE, UNAUTHENTICATED_PER_MINUTE
        )
        self.token_endpoint = settings.issuer + TOKEN_PATH
        self.server = HubAuthorizationServer(engine, self.issuer, self.token_endpoint)

    def verify(self, token: str) -> TokenClaims:
        """The token's claims if it is one this hub accepts; else ``InvalidToken``."""
        header, claims = _unverified_parts(token)
        issuer = claims.get("iss")
        if issuer == self.issuer.issuer:
            return self.issuer.validate(token)
        external = self.external
        if external and isinstance(issuer, str) and issuer.rstrip("/") == external.issuer:
            kid = header.get("kid")
            return external.validate(token, kid if isinstance(kid, str) else None)
        raise InvalidToken("the token was not issued by this hub or an issuer it trusts")

    def metadata(self) -> dict[str, Any]:
        """RFC 8414 authorization server metadata."""
        from policies import load_policy

        scopes = sorted({s for v in load_policy().role_scopes.values() for s in v})
        return {
            "issuer": self.issuer.issuer,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": self.settings.issuer + "/.well-known/jwks.json",
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ["Ed25519", "ES256", "RS256"],
            "scopes_supported": scopes,
        }
