"""Client secrets: generated at random, stored only as a salted scrypt hash."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt cost: ~16 MiB and tens of milliseconds per check, which is what makes guessing slow.
_N, _R, _P = 2**14, 8, 1
_DUMMY_SALT = secrets.token_bytes(16)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _derive(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(_derive(secret, salt, _N, _R, _P))}"


def verify_secret(secret: str, stored: str | None) -> bool:
    """Check ``secret`` against ``stored``; with nothing stored, do the same work and fail.

    Doing the scrypt work for an unknown client too keeps its response time like that of a
    known client with a wrong secret, so timing does not reveal which client ids exist.
    """
    try:
        scheme, n, r, p, salt, digest = (stored or "").split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        expected = base64.b64decode(digest)
        actual = _derive(secret, base64.b64decode(salt), int(n), int(r), int(p))
    except ValueError:
        _derive(secret, _DUMMY_SALT, _N, _R, _P)
        return False
    return hmac.compare_digest(actual, expected)
