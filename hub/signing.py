"""The hub's own Ed25519 key, which signs upload receipts.

A receipt is the agency's proof of what the hub accepted. It is signed over its RFC 8785
canonical JSON so that anyone holding the hub's public key (``GET /v1/keys``) can check it
without trusting the channel it came through.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


class HubSigner:
    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key_raw = raw
        self.key_id = hashlib.sha256(raw).hexdigest()[:16]

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._private_key.public_key()

    @classmethod
    def load_or_create(cls, path: Path) -> HubSigner:
        """Load the key at ``path``, creating it (mode 0600) on first start."""
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} does not hold an Ed25519 private key")
            return cls(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return cls(key)

    def sign_document(self, document: dict[str, Any]) -> dict[str, Any]:
        """Return ``document`` with a ``signature`` block over its canonical JSON."""
        payload = rfc8785.dumps(document)
        signature = self._private_key.sign(payload)
        return {
            **document,
            "signature": {
                "algorithm": "Ed25519",
                "key_id": self.key_id,
                "value": base64.b64encode(signature).decode("ascii"),
            },
        }

    def public_jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "kid": self.key_id,
            "x": base64.urlsafe_b64encode(self.public_key_raw).rstrip(b"=").decode("ascii"),
        }


def verify_signed_document(document: dict[str, Any], public_key: Ed25519PublicKey) -> bool:
    """True when ``document['signature']`` is a valid signature of the rest of it."""
    body = {key: value for key, value in document.items() if key != "signature"}
    try:
        signature = base64.b64decode(document["signature"]["value"])
        public_key.verify(signature, rfc8785.dumps(body))
    except (KeyError, TypeError, ValueError, InvalidSignature):
        return False
    return True
