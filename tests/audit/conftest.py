from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, text

from hub.audit import AuditEvent, append_event
from hub.audit.ledger import NoteSigner
from hub.services import Hub, build_hub
from hub.settings import Settings

START = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture
def ledger(settings: Settings) -> Iterator[Hub]:
    instance = build_hub(settings)
    yield instance
    instance.engine.dispose()


@pytest.fixture
def signer(ledger: Hub) -> NoteSigner:
    return NoteSigner.from_key_file(ledger.settings.audit_origin, ledger.settings.signing_key_file)


def sample_event(i: int) -> AuditEvent:
    return AuditEvent(
        action=("upload.create", "query.release", "agreement.read")[i % 3],
        decision="deny" if i % 5 == 0 else "allow",
        reason=f"rule {i % 7}: ok – “quoted” é",
        actor=f"client-{i % 4}",
        organisation=("met-police", "lb-hackney")[i % 2],
        role="analyst",
        resource=f"agreements/london-vru-partnership/datasets/d{i % 3}",
        agreement_id="london-vru-partnership",
        request_id=f"req-{i}",
        query_hash=f"{i:064x}" if i % 3 == 1 else None,
        epsilon_spent=0.1 * i if i % 3 == 1 else None,
        release_id=f"rel-{i}" if i % 3 == 1 else None,
        occurred_at=START + timedelta(minutes=i),
    )


def append_many(engine: Engine, count: int, *, start: int = 0) -> None:
    with engine.begin() as connection:
        for i in range(start, start + count):
            assert append_event(connection, sample_event(i)) == i


def disable_append_only(connection: Connection) -> None:
    """What an attacker with the database's owner rights does first."""
    if connection.dialect.name == "postgresql":
        for table in ("audit_events", "audit_tree_nodes", "audit_checkpoints"):
            connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
    else:
        for table in ("audit_events", "audit_tree_nodes", "audit_checkpoints"):
            for op in ("update", "delete"):
                connection.execute(text(f"DROP TRIGGER {table}_no_{op}"))
