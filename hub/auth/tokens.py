"""The hub's RFC 9068 JWT access tokens: minted with its Ed25519 key, checked with joserfc.

Only EdDSA is accepted for the hub's own tokens (an allow-list: ``none``, HMAC with the public
key and anything else are refused before a signature is looked at). The header must say
``typ: at+jwt`` so that an ID token or another JWT cannot be replayed as an access token.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from hub.signing import HubSigner

ALGORITHMS = ["Ed25519"]
TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
LEEWAY_SECONDS = 30


class InvalidToken(Exception):
    """A bearer token the hub does not accept; the message says why, never the token."""


@dataclass(frozen=True)
class TokenClaims:
    subject: str
    client_id: str | None
    role: str
    organisation: str
    scopes: frozenset[str]
    issuer: str
    external: bool = False


def validate_registered_claims(
    claims: dict[str, Any], *, issuer: str, audience: str, essential: tuple[str, ...]
) -> None:
    options: dict[str, Any] = {
        "iss": {"essential": True, "value": issuer},
        "aud": {"essential": True, "value": audience},
        "exp": {"essential": True},
        **{name: {"essential": True} for name in essential},
    }
    registry = jwt.JWTClaimsRegistry(leeway=LEEWAY_SECONDS, **options)
    try:
        registry.validate(claims)
    except JoseError as error:
        raise InvalidToken(_claim_problem(error)) from None
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > time.time() + LEEWAY_SECONDS:
        raise InvalidToken("the token is not valid yet (nbf is in the future)")


def _claim_problem(error: JoseError) -> str:
    text = str(error.description or error.error)
    if "expired" in text.lower():
        return "the token has expired"
    return f"the token's claims are not acceptable ({text})"


class TokenIssuer:
    def __init__(self, key_file: Path, *, issuer: str, audience: str, lifetime: int) -> None:
        signer = HubSigner.load_or_create(key_file)  # creates the key (mode 0600) on first use
        self.key_id = signer.key_id
        self._key = OKPKey.import_key(key_file.read_bytes(), {"kid": self.key_id, "use": "sig"})
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime

    def jwks(self) -> dict[str, Any]:
        public = self._key.as_dict(private=False)
        return {"keys": [{**public, "alg": "Ed25519", "use": "sig", "kid": self.key_id}]}

    def mint(
        self,
        *,
        client_id: str,
        role: str,
        organisation: str,
        scopes: list[str],
        lifetime: int | None = None,
        now: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        issued = int(time.time()) if now is None else now
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client_id,
            "client_id": client_id,
            "iat": issued,
            "nbf": issued,
            "exp": issued + (lifetime or self.lifetime),
            "jti": uuid.uuid4().hex,
            "scope": " ".join(scopes),
            "role": role,
            "organisation": organisation,
            **(extra or {}),
        }
        header = {"alg": "Ed25519", "typ": TOKEN_TYPE, "kid": self.key_id}
        return jwt.encode(header, claims, self._key, algorithms=ALGORITHMS)

    def validate(self, token: str) -> TokenClaims:
        try:
            decoded = jwt.decode(token, self._key, algorithms=ALGORITHMS)
        except JoseError:
            raise InvalidToken(
                "the token's signature or algorithm is not acceptable to this hub"
            ) from None
        except ValueError:
            raise InvalidToken("the token is not a well-formed JWT") from None
        if decoded.header.get("typ", "").lower() not in {TOKEN_TYPE, f"application/{TOKEN_TYPE}"}:
            raise InvalidToken("the token is not an access token (typ must be at+jwt)")
        claims = dict(decoded.claims)
        validate_registered_claims(
            claims,
            issuer=self.issuer,
            audience=self.audience,
            essential=("sub", "client_id", "iat", "jti", "role", "organisation"),
        )
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("the token's scope claim is not a string")
        return TokenClaims(
            subject=str(claims["sub"]),
            client_id=str(claims["client_id"]),
            role=str(claims["role"]),
            organisation=str(claims["organisation"]),
            scopes=frozenset(scope.split()),
            issuer=self.issuer,
        )
