"""Audit events and how they are appended.

An event is written on the same database connection (so in the same transaction) as the
action it records: no action without its event, no event for an action that rolled back.
Events never hold a query's results, an identifier, a token or a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, func, insert, select

from hub.models import AuditEventRow


@dataclass(frozen=True)
class AuditEvent:
    action: str  # e.g. "upload.create", "agreement.register", "query.release", "audit.read"
    decision: str  # "allow" or "deny"
    reason: str
    actor: str | None = None  # client id or token subject
    organisation: str | None = None
    role: str | None = None
    resource: str | None = None  # e.g. "agreements/london-vru/datasets/probation"
    agreement_id: str | None = None
    request_id: str | None = None
    query_hash: str | None = None
    epsilon_spent: float | None = None
    release_id: str | None = None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def append_event(connection: Connection, event: AuditEvent) -> int:
    """Append ``event`` inside the caller's transaction; return its index in the log."""
    # The Merkle-tree ledger (issue 6) replaces this simple append with one that also keeps
    # the tree's interior nodes and serialises concurrent appends.
    index = connection.execute(
        select(func.coalesce(func.max(AuditEventRow.index) + 1, 0))
    ).scalar_one()
    connection.execute(
        insert(AuditEventRow).values(
            index=index,
            occurred_at=event.occurred_at,
            request_id=event.request_id,
            actor=event.actor,
            organisation=event.organisation,
            role=event.role,
            action=event.action,
            resource=event.resource,
            agreement_id=event.agreement_id,
            decision=event.decision,
            reason=event.reason,
            query_hash=event.query_hash,
            epsilon_spent=event.epsilon_spent,
            release_id=event.release_id,
        )
    )
    return int(index)
