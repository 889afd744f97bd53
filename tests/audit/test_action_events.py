"""Promise 5 and issue 6: every action is recorded in the audit trail in the same transaction
as the action itself, with who did it; an action that fails leaves no action event (its access
decision is still recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api.app import create_app
from hub.models import AuditEventRow
from hub.services import Hub
from tests.conftest import Tokens
from tests.hub.test_agreements_api import post_document, signed_example


@pytest.fixture
def admin(hub: Hub, tokens: Tokens) -> Iterator[TestClient]:
    with TestClient(create_app(hub=hub)) as client:
        client.headers.update(tokens.headers("hub_admin", "hub-operator"))
        yield client


def events(hub: Hub, action: str) -> list[Any]:
    with hub.engine.connect() as connection:
        return list(
            connection.execute(
                select(AuditEventRow)
                .where(AuditEventRow.action == action)
                .order_by(AuditEventRow.index)
            )
        )


def test_registration_and_suspension_are_recorded_with_their_actor(
    admin: TestClient, hub: Hub, tokens: Tokens
) -> None:
    newer = signed_example(hub, "cardiff-model-ae-police", version=3)
    assert post_document(admin, newer).status_code == 201
    registered = events(hub, "agreement.registered")[-1]
    assert registered.actor == tokens.client_id("hub_admin", "hub-operator")
    assert (registered.organisation, registered.role) == ("hub-operator", "hub_admin")
    assert registered.agreement_id == "cardiff-model-ae-police"
    assert "version 3" in registered.reason

    admin.post("/v1/agreements/cardiff-model-ae-police/suspend", json={"reason": "audit review"})
    suspended = events(hub, "agreement.suspended")[-1]
    assert suspended.actor == registered.actor
    assert "audit review" in suspended.reason


def test_a_failed_registration_records_the_decision_but_no_action(
    admin: TestClient, hub: Hub
) -> None:
    before = len(events(hub, "agreement.registered"))
    tampered = signed_example(hub, "cardiff-model-ae-police", version=4)
    tampered["title"] = "changed after signing"
    assert post_document(admin, tampered).status_code == 422
    assert len(events(hub, "agreement.registered")) == before
    decisions = events(hub, "agreement.register")
    assert decisions and decisions[-1].decision == "allow"


def test_an_upload_and_its_withdrawal_are_recorded_with_the_data_officer(
    hub: Hub, tokens: Tokens
) -> None:
    from tests.adapters.adapter_extracts import extract_csv
    from tests.conftest import AgencyAuth
    from tests.hub.helpers import POLICE, post_extract

    with TestClient(create_app(hub=hub)) as client:
        client.auth = AgencyAuth(tokens)
        receipt = post_extract(client, extract_csv(POLICE)).json()
        stored = events(hub, "upload.stored")
        assert len(stored) == 1 and receipt["upload_id"] in stored[0].reason
        assert (stored[0].organisation, stored[0].role) == ("met-police", "data_officer")
        client.post(f"/v1/uploads/{receipt['upload_id']}/withdraw", json={"reason": "test"})
        withdrawn = events(hub, "upload.withdrawn")
        assert len(withdrawn) == 1 and withdrawn[0].actor == stored[0].actor

        # A refused file: its access decision is recorded, but no upload.stored event.
        assert post_extract(client, b"").status_code == 422
        assert len(events(hub, "upload.stored")) == 1
        decisions = [e.decision for e in events(hub, "upload.create")]
        assert decisions.count("allow") == 2  # the stored upload and the refused one
