"""Registering, listing, showing, suspending and exporting agreements over the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from agreements import example_paths, load_agreement, sign
from agreements.signing import key_id_for
from hub.api.app import create_app
from hub.services import Hub
from tests.conftest import Tokens


@pytest.fixture
def client(hub: Hub, tokens: Tokens) -> Iterator[TestClient]:
    # The hub's operator registers and suspends agreements (and may read them).
    with TestClient(create_app(hub=hub)) as test_client:
        test_client.headers.update(tokens.headers("hub_admin", "hub-operator"))
        yield test_client


def signed_example(hub: Hub, name: str, **changes: object) -> dict[str, object]:
    """An example agreement signed with the demo keys the ``hub`` fixture trusts."""
    from hub.demo import _party_key

    agreement = load_agreement(next(p for p in example_paths() if p.stem == name))
    agreement = agreement.model_copy(update=changes)
    keys_dir = hub.settings.data_dir / "signing-keys"
    for party in agreement.parties:
        key = _party_key(keys_dir, party.id)
        agreement = sign(agreement, key, party.id, key_id_for(key.public_key()), datetime.now(UTC))
    return agreement.model_dump(mode="json")


def post_document(client: TestClient, document: object, media: str = "application/json") -> object:
    body = json.dumps(document) if media == "application/json" else str(document)
    return client.post("/v1/agreements", content=body, headers={"content-type": media})


def test_list_show_and_statuses(client: TestClient) -> None:
    listed = {a["id"]: a for a in client.get("/v1/agreements").json()}
    assert listed["london-vru-partnership"]["status"] == "active"
    assert listed["southwark-yjs-exclusions"]["status"] == "draft"
    shown = client.get("/v1/agreements/london-vru-partnership").json()
    assert {d["name"] for d in shown["datasets"]} == {
        "police_violence_offences",
        "ae_istv_assaults",
        "school_exclusions",
        "youth_justice",
        "childrens_social_care",
        "probation",
    }
    assert client.get("/v1/agreements/nope").status_code == 404


def test_registering_the_same_document_again_is_idempotent(client: TestClient, hub: Hub) -> None:
    document = signed_example(hub, "cardiff-model-ae-police")
    # The hub fixture registered this agreement already (signed a moment earlier).
    first = post_document(client, document)
    assert first.status_code == 201, first.text
    again = post_document(client, document)
    assert again.status_code == 201
    assert again.json()["document_sha256"] == first.json()["document_sha256"]


def test_a_changed_document_under_the_same_version_is_a_conflict(
    client: TestClient, hub: Hub
) -> None:
    post_document(client, signed_example(hub, "cardiff-model-ae-police"))
    changed = signed_example(hub, "cardiff-model-ae-police", title="A different title")
    response = post_document(client, changed)
    assert response.status_code == 409
    assert "raise the version" in response.json()["error"]["message"]
    newer = signed_example(hub, "cardiff-model-ae-police", title="A different title", version=3)
    assert post_document(client, newer).status_code == 201
    assert client.get("/v1/agreements/cardiff-model-ae-police").json()["version"] == 3
    older = signed_example(hub, "cardiff-model-ae-police", version=1)
    assert post_document(client, older).status_code == 409


def test_unsigned_or_tampered_agreements_are_refused(client: TestClient, hub: Hub) -> None:
    unsigned = load_agreement(
        next(p for p in example_paths() if p.stem == "cardiff-model-ae-police")
    )
    response = post_document(client, unsigned.model_dump(mode="json"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "agreement_signature_invalid"

    document = signed_example(hub, "cardiff-model-ae-police")
    document["title"] = str(document["title"]) + "."
    response = post_document(client, document)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "agreement_signature_invalid"


def test_a_signature_by_an_untrusted_key_is_refused(client: TestClient) -> None:
    agreement = load_agreement(
        next(p for p in example_paths() if p.stem == "cardiff-model-ae-police")
    )
    for party in agreement.parties:
        stranger = Ed25519PrivateKey.generate()
        agreement = sign(
            agreement, stranger, party.id, key_id_for(stranger.public_key()), datetime.now(UTC)
        )
    response = post_document(client, agreement.model_dump(mode="json"))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "agreement_signature_invalid"


def test_invalid_documents_name_the_field_and_the_reason(client: TestClient, hub: Hub) -> None:
    document = signed_example(hub, "cardiff-model-ae-police")
    document["valid_until"] = "not-a-date"
    response = post_document(client, document)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "agreement_invalid"
    assert error["details"]["field"] == "valid_until"

    bad_yaml = client.post(
        "/v1/agreements", content=b"id: [unclosed", headers={"content-type": "application/yaml"}
    )
    assert bad_yaml.status_code == 422
    wrong_type = client.post("/v1/agreements", content=b"x", headers={"content-type": "text/plain"})
    assert wrong_type.status_code == 415


def test_an_agreement_that_would_store_a_raw_date_of_birth_is_refused(
    client: TestClient, hub: Hub
) -> None:
    document = signed_example(hub, "cardiff-model-ae-police")
    for dataset in document["datasets"]:  # type: ignore[union-attr]
        for field in dataset["fields"]:
            if field["name"] == "date_of_birth":
                field["generalise"] = "keep"
    response = post_document(client, document)
    assert response.status_code == 422
    assert "date_of_birth" in response.json()["error"]["message"]


def test_suspend_and_odrl(client: TestClient) -> None:
    odrl = client.get("/v1/agreements/london-vru-partnership/odrl").json()
    assert odrl["@type"] == "Agreement"
    assert odrl["permission"] and odrl["prohibition"]
    response = client.post(
        "/v1/agreements/london-vru-partnership/suspend", json={"reason": "audit"}
    )
    assert response.json()["status"] == "suspended"
    assert response.json()["suspension_reason"] == "audit"
    assert client.post("/v1/agreements/london-vru-partnership/suspend", json={}).status_code == 422


def test_health_and_openapi(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/agreements/{agreement_id}/datasets/{dataset}/uploads" in paths
    assert client.get("/docs").status_code == 200
    # the query routes read their body raw (see hub.api.queries) but still document it
    assert "requestBody" in paths["/v1/queries"]["post"]


def test_routing_errors_come_in_the_hubs_error_shape(client: TestClient) -> None:
    missing = client.get("/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = client.delete("/health")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert "allow" in {name.lower() for name in wrong_method.headers}


def test_example_files_are_unsigned_templates() -> None:
    for path in example_paths():
        assert isinstance(path, Path)
        assert load_agreement(path).signatures == []
