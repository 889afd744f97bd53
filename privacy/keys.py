"""Derivation of per-domain keys from the master secret.

Why: each linkage domain (a partnership, a project) must get pseudonyms that cannot be joined
with any other domain's, and rotating a key must not require a new master secret. HKDF-SHA256
gives independent keys for every (purpose, domain, version) from one master secret. The info
string length-prefixes each part so no two different triples can produce the same input
("ab"+"c" vs "a"+"bc").
"""

from __future__ import annotations

import struct

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["HKDF_SALT", "KEY_BYTES", "derive_key", "hkdf_info"]

KEY_BYTES = 32
# A fixed, public, project-specific salt (RFC 5869 §3.1): it separates this project's keys from
# any other use of the same master secret. Changing it changes every pseudonym.
HKDF_SALT = b"vru-hub/hkdf-salt/v1"
_INFO_PREFIX = b"vru-hub/key/v1"


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def hkdf_info(*, domain: str, version: int, purpose: str) -> bytes:
    """The HKDF info string: a constant label, then purpose, domain and version, each prefixed
    with its 4-byte big-endian length."""
    if version < 0:
        raise ValueError("key version must be zero or positive")
    return (
        _INFO_PREFIX
        + _field(purpose.encode("utf-8"))
        + _field(domain.encode("utf-8"))
        + _field(str(version).encode("ascii"))
    )


def derive_key(master: bytes, *, domain: str, version: int, purpose: str) -> bytes:
    """32-byte HKDF-SHA256 key for (purpose, domain, version) from the master secret."""
    if len(master) < KEY_BYTES:
        raise ValueError(f"the master secret must be at least {KEY_BYTES} bytes")
    if not domain or not purpose:
        raise ValueError("domain and purpose must be non-empty")
    hkdf = HKDF(
        algorithm=SHA256(),
        length=KEY_BYTES,
        salt=HKDF_SALT,
        info=hkdf_info(domain=domain, version=version, purpose=purpose),
    )
    return hkdf.derive(master)
