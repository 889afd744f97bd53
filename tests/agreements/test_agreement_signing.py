"""Real Ed25519 signatures over the canonical bytes: any change after signing is caught."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agreements import (
    Agreement,
    SignatureError,
    TrustedSigners,
    canonical_bytes,
    example_paths,
    key_id_for,
    load_agreement,
    parse_agreement,
    sign,
    verify_signatures,
)

KeyRing = tuple[dict[str, tuple[str, Ed25519PrivateKey]], TrustedSigners]
AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
Make = Callable[[Agreement], KeyRing]


def sign_all(agreement: Agreement, private: KeyRing) -> Agreement:
    keys, _ = private
    for party in agreement.parties:
        if party.has_role("controller") or party.has_role("provider"):
            key_id, key = keys[party.id]
            agreement = sign(agreement, key, party.id, key_id, AT)
    return agreement


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name)
def test_every_example_signs_and_verifies(path: Path, keyring: Make) -> None:
    agreement = load_agreement(path)
    ring = keyring(agreement)
    signed = sign_all(agreement, ring)
    signers = verify_signatures(signed, ring[1])
    assert set(signers) == {
        p.id for p in agreement.parties if p.has_role("controller") or p.has_role("provider")
    }


def test_canonical_bytes_ignore_signatures_and_format(
    main_agreement: Agreement, main_text: str, keyring: Make
) -> None:
    ring = keyring(main_agreement)
    signed = sign_all(main_agreement, ring)
    assert canonical_bytes(signed) == canonical_bytes(main_agreement)
    as_json = json.dumps(yaml.safe_load(main_text), default=str, indent=4)
    assert canonical_bytes(parse_agreement(as_json, "x.json", "json")) == canonical_bytes(
        main_agreement
    )
    assert b"signatures" not in canonical_bytes(signed)


def test_signed_agreement_survives_a_round_trip_through_json(
    main_agreement: Agreement, keyring: Make
) -> None:
    ring = keyring(main_agreement)
    signed = sign_all(main_agreement, ring)
    text = signed.model_dump_json()
    verify_signatures(parse_agreement(text, "signed.json", "json"), ring[1])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (  # one field's classification
            "{name: person_role, classification: attribute}",
            "{name: person_role, classification: quasi_identifier, generalise: keep}",
        ),
        ("data-sharing agreement\n", "data-sharing agreemenT\n"),  # one byte of the title
        ("epsilon_per_query: 0.5", "epsilon_per_query: 0.6"),
        ("generalise: postcode_district}", "generalise: keep}"),
    ],
)
def test_one_changed_byte_fails_verification(
    main_text: str, main_agreement: Agreement, keyring: Make, old: str, new: str
) -> None:
    ring = keyring(main_agreement)
    signed = sign_all(main_agreement, ring)
    signatures = yaml.safe_dump(
        {"signatures": [s.model_dump(mode="json") for s in signed.signatures]}
    )
    assert old in main_text
    tampered = parse_agreement(main_text.replace(old, new, 1) + signatures, "tampered.yaml")
    untampered = parse_agreement(main_text + signatures, "signed.yaml")
    verify_signatures(untampered, ring[1])
    with pytest.raises(SignatureError) as info:
        verify_signatures(tampered, ring[1])
    assert str(info.value) == (
        "agreement london-vru-partnership v1: signatures[0]: the agreement's bytes do not match "
        "what mopac-vru signed with key 'mopac-vru-2026': it was changed after signing"
    )


def test_every_single_byte_of_the_canonical_form_matters(
    main_agreement: Agreement, keyring: Make
) -> None:
    _, key = keyring(main_agreement)[0]["mopac-vru"]
    message = canonical_bytes(main_agreement)
    raw = key.sign(message)
    public = key.public_key()
    public.verify(raw, message)
    for position in range(0, len(message), 997):
        changed = bytearray(message)
        changed[position] ^= 0x01
        with pytest.raises(InvalidSignature):
            public.verify(raw, bytes(changed))


def test_unknown_key_id(main_agreement: Agreement, keyring: Make) -> None:
    ring = keyring(main_agreement)
    signed = sign(main_agreement, Ed25519PrivateKey.generate(), "mopac-vru", "stray-key", AT)
    with pytest.raises(SignatureError, match=r"key id 'stray-key' is not a trusted key"):
        verify_signatures(signed, ring[1])


def test_key_of_another_party(main_agreement: Agreement, keyring: Make) -> None:
    keys, trusted = keyring(main_agreement)
    key_id, key = keys["met-police"]
    signed = sign(main_agreement, key, "mopac-vru", key_id, AT)
    with pytest.raises(SignatureError) as info:
        verify_signatures(signed, trusted)
    assert "key 'met-police-2026' belongs to met-police, not to the stated signer mopac-vru" in (
        str(info.value)
    )


def test_signature_by_the_wrong_private_key(main_agreement: Agreement, keyring: Make) -> None:
    _, trusted = keyring(main_agreement)
    signed = sign(main_agreement, Ed25519PrivateKey.generate(), "mopac-vru", "mopac-vru-2026", AT)
    with pytest.raises(SignatureError, match="do not match what mopac-vru signed"):
        verify_signatures(signed, trusted)


def test_a_required_party_has_not_signed(main_agreement: Agreement, keyring: Make) -> None:
    keys, trusted = keyring(main_agreement)
    key_id, key = keys["mopac-vru"]
    signed = sign(main_agreement, key, "mopac-vru", key_id, AT)
    with pytest.raises(SignatureError) as info:
        verify_signatures(signed, trusted)
    assert "not signed by met-police, nhs-england-london, lb-lambeth" in str(info.value)
    assert verify_signatures(signed, trusted, required_parties=["mopac-vru"]) == ["mopac-vru"]


def test_unsigned_agreement_fails(main_agreement: Agreement) -> None:
    with pytest.raises(SignatureError, match="not signed by mopac-vru"):
        verify_signatures(main_agreement, TrustedSigners())


def test_only_parties_can_sign(main_agreement: Agreement) -> None:
    with pytest.raises(KeyError):
        sign(main_agreement, Ed25519PrivateKey.generate(), "stranger", "k", AT)


def test_trusted_signers_save_and_load(
    main_agreement: Agreement, keyring: Make, tmp_path: Path
) -> None:
    ring = keyring(main_agreement)
    path = tmp_path / "trusted.json"
    ring[1].save(path)
    document = json.loads(path.read_text())
    assert set(document["keys"][0]) == {"key_id", "party", "public_key"}
    assert len(base64.b64decode(document["keys"][0]["public_key"])) == 32
    loaded = TrustedSigners.load(path)
    assert loaded["met-police-2026"].party == "met-police"
    verify_signatures(sign_all(main_agreement, ring), loaded)


def test_bad_trusted_signers_file(tmp_path: Path) -> None:
    path = tmp_path / "trusted.json"
    path.write_text('{"keys": [{"key_id": "a", "party": "b", "public_key": "bm9wZQ=="}]}')
    with pytest.raises(SignatureError, match=r"keys\[0\]\.public_key: not a base64 raw"):
        TrustedSigners.load(path)
    path.write_text("[]")
    with pytest.raises(SignatureError, match="expected"):
        TrustedSigners.load(path)


def test_key_id_for_is_stable_and_distinct() -> None:
    key = Ed25519PrivateKey.generate().public_key()
    other = Ed25519PrivateKey.generate().public_key()
    assert key_id_for(key) == key_id_for(key)
    assert key_id_for(key) != key_id_for(other)
    assert key_id_for(key).startswith("ed25519-") and len(key_id_for(key)) == 24
