"""Shared fixtures: the extract layouts as LayoutField maps and fresh Ed25519 keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agreements import Agreement, LayoutField, TrustedSigners, load_agreement

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "adapters" / "reference" / "schemas.json"
EXAMPLES = ROOT / "agreements" / "examples"
MAIN_EXAMPLE = EXAMPLES / "london-vru-partnership.yaml"


def read_layouts() -> dict[str, dict[str, LayoutField]]:
    document = json.loads(SCHEMAS.read_text(encoding="utf-8"))
    return {
        dataset["id"]: {
            field["name"]: LayoutField(
                identifier_class=field["identifier_class"],
                required=field.get("required", True),
                special_category=field.get("special_category_data", False),
            )
            for field in dataset["fields"]
        }
        for dataset in document["datasets"]
    }


@pytest.fixture(scope="session")
def layouts() -> dict[str, dict[str, LayoutField]]:
    return read_layouts()


@pytest.fixture(scope="session")
def main_agreement() -> Agreement:
    return load_agreement(MAIN_EXAMPLE)


@pytest.fixture(scope="session")
def main_text() -> str:
    return MAIN_EXAMPLE.read_text(encoding="utf-8")


KeyRing = tuple[dict[str, tuple[str, Ed25519PrivateKey]], TrustedSigners]


@pytest.fixture
def keyring() -> Callable[[Agreement], KeyRing]:
    """One fresh key per party of an agreement, and the matching trusted-signer set."""

    def make(agreement: Agreement) -> KeyRing:
        private: dict[str, tuple[str, Ed25519PrivateKey]] = {}
        trusted = TrustedSigners()
        for party in agreement.parties:
            key = Ed25519PrivateKey.generate()
            key_id = f"{party.id}-2026"
            private[party.id] = (key_id, key)
            trusted.add(key_id, party.id, key.public_key())
        return private, trusted

    return make
