"""Access tokens from an external OpenID Connect issuer (Keycloak, Microsoft Entra ID).

The issuer's JWKS is discovered from its metadata, cached, and fetched again once when a token
names a key id the cache does not hold (key rotation), at most once every few seconds.
Roles and organisation come from configured claims, mapped onto the hub's roles.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from hub.auth.tokens import InvalidToken, TokenClaims, validate_registered_claims
from policies import ROLES, scopes_for_role

ALGORITHMS = ["RS256", "PS256", "ES256", "Ed25519"]
REFETCH_INTERVAL_SECONDS = 10.0


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class ExternalIssuer:
    def __init__(
        self,
        issuer: str,
        *,
        audience: str,
        jwks_url: str | None = None,
        role_claim: str = "roles",
        organisation_claim: str = "organisation",
        role_map: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        refetch_interval: float = REFETCH_INTERVAL_SECONDS,
    ) -> None:
        self.refetch_interval = refetch_interval
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self._jwks_url = jwks_url
        self._role_claim = role_claim
        self._organisation_claim = organisation_claim
        self._role_map = {**{role: role for role in ROLES}, **(role_map or {})}
        self._timeout = timeout
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _discover_jwks_url(self) -> str:
        import httpx  # see _fetch

        if self._jwks_url:
            return self._jwks_url
        response = httpx.get(
            f"{self.issuer}/.well-known/openid-configuration", timeout=self._timeout
        )
        response.raise_for_status()
        metadata = response.json()
        if str(metadata.get("issuer", "")).rstrip("/") != self.issuer:
            raise InvalidToken("the external issuer's metadata names a different issuer")
        self._jwks_url = str(metadata["jwks_uri"])
        return self._jwks_url

    def _fetch(self) -> KeySet:
        # Imported here, not with the module: httpx imports its command line's rich and
        # pygments, ~9 MB the API process would otherwise carry whether or not an external
        # issuer is configured (issue 2's memory target).
        import httpx

        try:
            response = httpx.get(self._discover_jwks_url(), timeout=self._timeout)
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, KeyError, JoseError):
            raise InvalidToken(
                "the external issuer's keys cannot be fetched just now; try again shortly"
            ) from None
        self._keys = keys
        self._fetched_at = time.monotonic()
        return keys

    def _keys_for(self, kid: str | None) -> KeySet:
        with self._lock:
            keys = self._keys or self._fetch()
            known = {key.kid for key in keys.keys}
            stale = time.monotonic() - self._fetched_at >= self.refetch_interval
            if kid not in known and stale:
                keys = self._fetch()
            return keys

    def validate(self, token: str, kid: str | None) -> TokenClaims:
        keys = self._keys_for(kid)
        try:
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
        except JoseError:
            raise InvalidToken(
                "the token's signature, key or algorithm is not acceptable to this hub"
            ) from None
        claims = dict(decoded.claims)
        validate_registered_claims(
            claims, issuer=self.issuer, audience=self.audience, essential=("sub",)
        )
        return self._subject(claims)

    def _subject(self, claims: dict[str, Any]) -> TokenClaims:
        raw_roles = _claim(claims, self._role_claim)
        if isinstance(raw_roles, str):
            raw_roles = [raw_roles]
        roles = {self._role_map[r] for r in raw_roles or () if r in self._role_map}
        if len(roles) != 1:
            raise InvalidToken(
                f"the token must carry exactly one hub role in claim {self._role_claim!r} "
                f"(found {len(roles)}); ask your identity administrator to assign one"
            )
        organisation = _claim(claims, self._organisation_claim)
        if not isinstance(organisation, str) or not organisation:
            raise InvalidToken(
                f"the token has no organisation in claim {self._organisation_claim!r}; ask "
                "your identity administrator to add it"
            )
        role = roles.pop()
        return TokenClaims(
            subject=str(claims["sub"]),
            client_id=str(claims.get("azp") or claims.get("client_id") or "") or None,
            role=role,
            organisation=organisation,
            scopes=scopes_for_role(role),
            issuer=self.issuer,
            external=True,
        )
