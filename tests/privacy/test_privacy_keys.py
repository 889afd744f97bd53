"""Key derivation: HKDF-SHA256 per (purpose, domain, version), checked against an independent
stdlib implementation of RFC 5869."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from privacy.keys import HKDF_SALT, derive_key
from privacy.matchkeys import Pseudonymiser

MASTER = bytes(range(32))


def rfc5869_hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def info_for(purpose: str, domain: str, version: int) -> bytes:
    def field(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    return (
        b"vru-hub/key/v1"
        + field(purpose.encode())
        + field(domain.encode())
        + field(str(version).encode())
    )


def test_rfc5869_reference_implementation_is_right() -> None:
    # RFC 5869 test case 1
    ikm = bytes.fromhex("0b" * 22)
    salt = bytes.fromhex("000102030405060708090a0b0c")
    info = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9")
    expected = (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    assert rfc5869_hkdf_sha256(ikm, salt, info, 42).hex() == expected


def test_derive_key_matches_independent_hkdf() -> None:
    key = derive_key(MASTER, domain="london-vru", version=3, purpose="match-key")
    assert len(key) == 32
    assert key == rfc5869_hkdf_sha256(MASTER, HKDF_SALT, info_for("match-key", "london-vru", 3), 32)


def test_known_answer_hmac_of_fixed_input() -> None:
    # The whole chain, computed independently: HKDF (stdlib) then HMAC-SHA256 (stdlib).
    key = rfc5869_hkdf_sha256(MASTER, HKDF_SALT, info_for("match-key", "london-vru", 1), 32)
    message = b"nhs\x1f9434765919"
    # The HMAC key is the derived key's hex text (what the vectorised HMAC takes).
    expected = hmac.new(key.hex().encode(), message, hashlib.sha256).digest()
    assert Pseudonymiser(MASTER, "london-vru", 1).digest(message) == expected


def test_derive_key_is_deterministic() -> None:
    a = derive_key(MASTER, domain="d", version=1, purpose="p")
    assert a == derive_key(MASTER, domain="d", version=1, purpose="p")


def test_keys_are_separated() -> None:
    base = {"domain": "london-vru", "version": 1, "purpose": "match-key"}
    variants = [
        base,
        {**base, "domain": "kent-vru"},
        {**base, "version": 2},
        {**base, "purpose": "record-ref"},
        # length prefixes: moving characters between fields changes the key
        {"domain": "london-vrum", "version": 1, "purpose": "atch-key"},
        {"domain": "1", "version": 1, "purpose": "match-key"},
    ]
    keys = {derive_key(MASTER, **v) for v in variants}  # type: ignore[arg-type]
    assert len(keys) == len(variants)
    assert derive_key(bytes(31) + b"\x01", **base) != derive_key(MASTER, **base)  # type: ignore[arg-type]


def test_derive_key_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        derive_key(b"short", domain="d", version=1, purpose="p")
    with pytest.raises(ValueError):
        derive_key(MASTER, domain="", version=1, purpose="p")
    with pytest.raises(ValueError):
        derive_key(MASTER, domain="d", version=-1, purpose="p")
