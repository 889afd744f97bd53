"""``hub clients`` on the hub host, and the CLI's client renewing its token."""

from __future__ import annotations

import re

from sqlalchemy import select
from typer.testing import CliRunner

from hub.auth.clients import ClientStore
from hub.cli import app
from hub.client import ClientCredentials, HubClient
from hub.models import AuditEventRow
from hub.services import Hub
from tests.conftest import HubProcess

runner = CliRunner()


def test_create_list_revoke_are_audited_and_show_the_secret_once(hub: Hub) -> None:
    env = {
        "HUB_DATA_DIR": str(hub.settings.data_dir),
        "HUB_DATABASE_URL": hub.settings.resolved_database_url,
    }
    created = runner.invoke(
        app, ["clients", "create", "--org", "met-police", "--role", "data_officer"], env=env
    )
    assert created.exit_code == 0, created.output
    client_id = re.search(r"client_id:\s+(\S+)", created.output).group(1)  # type: ignore[union-attr]
    secret = re.search(r"client_secret:\s+(\S+)", created.output).group(1)  # type: ignore[union-attr]
    stored = ClientStore(hub.engine).get(client_id)
    assert stored is not None and stored.secret_hash and secret not in stored.secret_hash

    listed = runner.invoke(app, ["clients", "list"], env=env)
    assert client_id in listed.output and secret not in listed.output
    revoked = runner.invoke(app, ["clients", "revoke", client_id], env=env)
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    bad = runner.invoke(
        app, ["clients", "create", "--org", "met-police", "--role", "superuser"], env=env
    )
    assert bad.exit_code == 1 and "data_officer" in bad.output

    with hub.engine.connect() as connection:
        actions = connection.execute(
            select(AuditEventRow.action, AuditEventRow.reason).where(
                AuditEventRow.action.like("client.%")
            )
        ).all()
    assert [a.action for a in actions] == [
        "client.create",
        "client.list",
        "client.revoke",
        "client.create",  # the refused one, recorded as a deny
    ]
    assert all(secret not in a.reason for a in actions)


def test_the_hub_client_gets_and_renews_its_token(hub: Hub, hub_process: HubProcess) -> None:
    client, secret = ClientStore(hub.engine).create(organisation="partnership", role="ig_lead")
    assert secret
    with HubClient(hub_process.url, client_id=client.client_id, client_secret=secret) as api:
        assert api.list_agreements()
        auth = api._http.auth
        assert isinstance(auth, ClientCredentials)
        first = auth.token()
        auth._expires_at = 0.0  # as if the token had expired
        assert api.get_agreement("london-vru-partnership")["id"] == "london-vru-partnership"
        assert auth.token() != first
    with hub.engine.connect() as connection:
        issued = connection.execute(
            select(AuditEventRow.decision).where(AuditEventRow.action == "token.issue")
        ).all()
    assert [row.decision for row in issued] == ["allow", "allow"]
