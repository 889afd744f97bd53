"""Ed25519 signatures over the canonical (RFC 8785) form of an agreement.

Each party signs the same bytes: the agreement's JSON form without ``signatures``, canonicalised
with RFC 8785 (JCS), so YAML and JSON copies of one agreement verify alike and any change to any
value — one character of the title, one field's classification — invalidates every signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agreements.model import Agreement, Signature

RequiredParties = Literal["controllers and providers", "all parties"]


class SignatureError(Exception):
    """An agreement's signatures do not prove that the required parties agreed to it."""


def canonical_bytes(agreement: Agreement) -> bytes:
    """RFC 8785 canonical JSON of the agreement without its signatures."""
    document = agreement.model_dump(mode="json", exclude={"signatures"})
    return rfc8785.dumps(document)


def sign(
    agreement: Agreement,
    private_key: Ed25519PrivateKey,
    signer: str,
    key_id: str,
    at: datetime,
) -> Agreement:
    """A copy of ``agreement`` with ``signer``'s signature appended."""
    agreement.party(signer)  # KeyError for a non-party, before anything is signed
    raw = private_key.sign(canonical_bytes(agreement))
    signature = Signature(
        signer=signer,
        key_id=key_id,
        algorithm="Ed25519",
        signed_at=at,
        signature=base64.b64encode(raw).decode("ascii"),
    )
    return agreement.model_copy(update={"signatures": [*agreement.signatures, signature]})


@dataclass(frozen=True)
class TrustedKey:
    party: str
    public_key: Ed25519PublicKey


def public_key_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def key_id_for(key: Ed25519PublicKey) -> str:
    """A stable key id derived from the public key: ``ed25519-`` + 16 hex digits of its SHA-256."""
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


class TrustedSigners(Mapping[str, TrustedKey]):
    """The keys the hub trusts: key id → (party id, Ed25519 public key)."""

    def __init__(self, keys: Mapping[str, tuple[str, Ed25519PublicKey]] | None = None) -> None:
        self._keys: dict[str, TrustedKey] = {}
        for key_id, (party, public_key) in (keys or {}).items():
            self.add(key_id, party, public_key)

    def add(self, key_id: str, party: str, public_key: Ed25519PublicKey) -> None:
        if key_id in self._keys:
            raise ValueError(f"key id {key_id!r} is already trusted")
        self._keys[key_id] = TrustedKey(party, public_key)

    def __getitem__(self, key_id: str) -> TrustedKey:
        return self._keys[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def to_json(self) -> dict[str, list[dict[str, str]]]:
        return {
            "keys": [
                {"key_id": key_id, "party": k.party, "public_key": public_key_b64(k.public_key)}
                for key_id, k in self._keys.items()
            ]
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, document: object, source: str = "trusted signers") -> TrustedSigners:
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise SignatureError(f"{source}: expected {{\"keys\": [...]}}")
        trusted = cls()
        for index, entry in enumerate(document["keys"]):
            where = f"{source}: keys[{index}]"
            if not isinstance(entry, dict) or set(entry) != {"key_id", "party", "public_key"}:
                raise SignatureError(f"{where}: needs exactly key_id, party and public_key")
            if not all(isinstance(v, str) for v in entry.values()):
                raise SignatureError(f"{where}: key_id, party and public_key must be strings")
            try:
                raw = base64.b64decode(entry["public_key"], validate=True)
                public_key = Ed25519PublicKey.from_public_bytes(raw)
            except (binascii.Error, ValueError):
                raise SignatureError(
                    f"{where}.public_key: not a base64 raw 32-byte Ed25519 public key"
                ) from None
            try:
                trusted.add(entry["key_id"], entry["party"], public_key)
            except ValueError as exc:
                raise SignatureError(f"{where}.key_id: {exc}") from None
        return trusted

    @classmethod
    def load(cls, path: Path) -> TrustedSigners:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SignatureError(f"{path.name}: cannot read trusted signers: {exc}") from None
        return cls.from_json(document, path.name)


def _required(agreement: Agreement, required_parties: RequiredParties | Iterable[str]) -> list[str]:
    if required_parties == "controllers and providers":
        return [
            p.id for p in agreement.parties if p.has_role("controller") or p.has_role("provider")
        ]
    if required_parties == "all parties":
        return [p.id for p in agreement.parties]
    if isinstance(required_parties, str):
        raise ValueError(f"unknown required_parties {required_parties!r}")
    return list(required_parties)


def verify_signatures(
    agreement: Agreement,
    trusted: Mapping[str, TrustedKey],
    required_parties: RequiredParties | Iterable[str] = "controllers and providers",
) -> list[str]:
    """Check every signature and that each required party signed; return the signing parties.

    Raises SignatureError naming the key, the party and what is wrong.
    """
    message = canonical_bytes(agreement)
    signed: list[str] = []
    for index, signature in enumerate(agreement.signatures):
        where = f"agreement {agreement.id} v{agreement.version}: signatures[{index}]"
        key = trusted.get(signature.key_id)
        if key is None:
            raise SignatureError(
                f"{where}: key id {signature.key_id!r} is not a trusted key; add "
                f"{signature.signer}'s public key to the trusted signers or re-sign"
            )
        if key.party != signature.signer:
            raise SignatureError(
                f"{where}: key {signature.key_id!r} belongs to {key.party}, "
                f"not to the stated signer {signature.signer}"
            )
        try:
            raw = base64.b64decode(signature.signature, validate=True)
            key.public_key.verify(raw, message)
        except (binascii.Error, InvalidSignature):
            raise SignatureError(
                f"{where}: the agreement's bytes do not match what {signature.signer} signed "
                f"with key {signature.key_id!r}: it was changed after signing"
            ) from None
        signed.append(signature.signer)
    missing = [party for party in _required(agreement, required_parties) if party not in signed]
    if missing:
        raise SignatureError(
            f"agreement {agreement.id} v{agreement.version}: not signed by "
            + ", ".join(missing)
            + f" (required: {required_parties if isinstance(required_parties, str) else 'listed'}"
            " parties)"
        )
    return signed
