"""C2SP signed notes and tlog checkpoints, Ed25519 only (pure functions).

https://github.com/C2SP/C2SP/blob/main/signed-note.md and tlog-checkpoint.md. A checkpoint's
body is ``<origin>\\n<size>\\n<base64 root>\\n``; the note is the body, a blank line, and one
line per signature: ``— <key name> <base64(4-byte key hash || 64-byte signature)>\\n``, where
the key hash is the first four bytes of SHA-256(key name || "\\n" || 0x01 || public key).
A verifier key is written ``<name>+<hex key hash>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED25519 = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # em dash, space


class NoteError(ValueError):
    """A note or checkpoint is malformed, or its signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, public_key: Ed25519PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + _raw(public_key)).digest()[:4]


def _check_name(name: str) -> None:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} must be non-empty with no spaces or '+'")


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    _check_name(name)
    encoded = base64.b64encode(ED25519 + _raw(public_key)).decode("ascii")
    return f"{name}+{key_hash(name, public_key).hex()}+{encoded}"


def parse_verifier_key(text: str) -> tuple[str, Ed25519PublicKey]:
    """``(name, public key)`` from a verifier key string."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("a verifier key is <name>+<hex key hash>+<base64 key>")
    name, hash_hex, encoded = parts
    try:
        raw = base64.b64decode(encoded, validate=True)
        expected_hash = bytes.fromhex(hash_hex)
    except (binascii.Error, ValueError) as error:
        raise NoteError(f"verifier key is not well formed: {error}") from None
    if len(raw) != 33 or raw[:1] != ED25519:
        raise NoteError("verifier key is not an Ed25519 key")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if key_hash(name, public_key) != expected_hash:
        raise NoteError("verifier key's hash does not match its name and key")
    return name, public_key


def sign_checkpoint(checkpoint: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> str:
    _check_name(name)
    if "\n" in checkpoint.origin or not checkpoint.origin:
        raise NoteError("a checkpoint origin is one non-empty line")
    body = checkpoint.body()
    signature = private_key.sign(body.encode())
    blob = key_hash(name, private_key.public_key()) + signature
    return f"{body}\n{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode('ascii')}\n"


def open_checkpoint(
    note: str, name: str, public_key: Ed25519PublicKey, *, origin: str | None = None
) -> Checkpoint:
    """Verify ``note``'s signature by ``(name, public_key)`` and parse its checkpoint body.

    ``origin`` defaults to the key name. Raises ``NoteError`` saying what is wrong.
    """
    body, separator, signatures = note.rpartition("\n\n")
    if not separator or not note.endswith("\n"):
        raise NoteError("not a signed note: no blank line before the signatures")
    body += "\n"
    wanted = key_hash(name, public_key)
    found_key = False
    for line in signatures.splitlines():
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line must start with an em dash and a space")
        try:
            line_name, encoded = line[len(SIGNATURE_PREFIX) :].split(" ")
            blob = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise NoteError("a signature line is not well formed") from None
        if line_name != name or blob[:4] != wanted:
            continue
        found_key = True
        try:
            public_key.verify(blob[4:], body.encode())
        except InvalidSignature:
            raise NoteError(f"the signature by {name} does not verify") from None
        break
    if not found_key:
        raise NoteError(f"the note carries no signature by the key {name}")
    return parse_body(body, origin or name)


def parse_body(body: str, origin: str) -> Checkpoint:
    lines = body.split("\n")
    if len(lines) < 4 or lines[-1] != "":
        raise NoteError("a checkpoint body is origin, size and root, one per line")
    if lines[0] != origin:
        raise NoteError(f"the checkpoint's origin is {lines[0]!r}, not {origin!r}")
    if not lines[1].isdigit() or (lines[1] != "0" and lines[1].startswith("0")):
        raise NoteError("the checkpoint's size is not a decimal number")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        raise NoteError("the checkpoint's root is not base64") from None
    if len(root) != 32:
        raise NoteError("the checkpoint's root is not a SHA-256 hash")
    return Checkpoint(origin=lines[0], size=int(lines[1]), root=root)
