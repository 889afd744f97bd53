"""Audit events and how they are appended.

An event is written on the same database connection (so in the same transaction) as the
action it records: no action without its event, no event for an action that rolled back.
Events never hold a query's results, an identifier, a token or a secret.

Each event is a leaf of the Merkle tree (``hub.audit.merkle``): the leaf's data is the RFC 8785
canonical JSON of ``event_record(index, event)``, so anyone holding an export can recompute it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import rfc8785
from sqlalchemy import Connection

from hub.audit import merkle

# The fields of a leaf, in the order exports list them.
RECORD_FIELDS = (
    "index",
    "time",
    "request_id",
    "actor",
    "organisation",
    "role",
    "action",
    "resource",
    "agreement",
    "decision",
    "reason",
    "query_hash",
    "epsilon",
    "release_id",
)


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


@dataclass(frozen=True)
class Actor:
    """Who performed an action, as the access decision established it."""

    actor: str | None = None
    organisation: str | None = None
    role: str | None = None
    request_id: str | None = None

    def event(
        self,
        action: str,
        reason: str,
        *,
        resource: str | None = None,
        agreement_id: str | None = None,
    ) -> AuditEvent:
        """An ``allow`` event recording that ``action`` was carried out."""
        return AuditEvent(
            action=action,
            decision="allow",
            reason=reason,
            actor=self.actor,
            organisation=self.organisation,
            role=self.role,
            resource=resource,
            agreement_id=agreement_id,
            request_id=self.request_id,
        )


# An action the hub performs on its own behalf (the demo loading its data, a catch-up job).
SYSTEM = Actor(actor="hub", organisation="hub-operator", role="system")


def as_utc(moment: datetime) -> datetime:
    """Aware UTC; a naive value (SQLite hands them back so) is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime | str) -> str:
    if isinstance(moment, str):  # raw SQL on SQLite reads the stored text
        moment = datetime.fromisoformat(moment)
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_record(index: int, event: AuditEvent) -> dict[str, Any]:
    return {
        "index": index,
        "time": format_time(event.occurred_at),
        "request_id": event.request_id,
        "actor": event.actor,
        "organisation": event.organisation,
        "role": event.role,
        "action": event.action,
        "resource": event.resource,
        "agreement": event.agreement_id,
        "decision": event.decision,
        "reason": event.reason,
        "query_hash": event.query_hash,
        "epsilon": event.epsilon_spent,
        "release_id": event.release_id,
    }


def record_from_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    """The leaf record of one ``audit_events`` row, as stored."""
    return {
        "index": int(row["index"]),
        "time": format_time(row["occurred_at"]),
        "request_id": row["request_id"],
        "actor": row["actor"],
        "organisation": row["organisation"],
        "role": row["role"],
        "action": row["action"],
        "resource": row["resource"],
        "agreement": row["agreement_id"],
        "decision": row["decision"],
        "reason": row["reason"],
        "query_hash": row["query_hash"],
        "epsilon": row["epsilon_spent"],
        "release_id": row["release_id"],
    }


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """RFC 8785 canonical JSON of a flat record with ASCII keys (every leaf record).

    Equal to ``rfc8785.dumps`` for such records (a test checks it), several times faster:
    strings, integers and null serialise as ``json.dumps`` does without ASCII escaping; floats
    (ECMAScript number form) and anything nested go through ``rfc8785``.
    """
    parts = []
    for key in sorted(record):
        value = record[key]
        if (
            value is None
            or isinstance(value, str)
            or (isinstance(value, int) and not isinstance(value, bool))
        ):
            encoded = json.dumps(value, ensure_ascii=False)
        else:
            encoded = rfc8785.dumps(value).decode("utf-8")
        parts.append(f"{json.dumps(key)}:{encoded}")
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def record_leaf_hash(record: Mapping[str, Any]) -> bytes:
    if not all(isinstance(key, str) and key.isascii() for key in record):
        return merkle.leaf_hash(rfc8785.dumps(dict(record)))
    return merkle.leaf_hash(canonical_json(record))


# Appends run on the DBAPI connection underneath the caller's (same transaction): at a few
# thousand events a second SQLAlchemy's per-statement overhead would be most of the cost.
_SQL = {
    "sqlite": (
        # Taking the state row's write first serialises appends (SQLite's write lock;
        # PostgreSQL's row lock). The returned size is the one after this append.
        "UPDATE audit_tree_state SET size = size + 1 WHERE id = 1 RETURNING size, frontier",
        'INSERT INTO audit_events ("index", occurred_at, request_id, actor, organisation, role, '
        "action, resource, agreement_id, decision, reason, query_hash, epsilon_spent, "
        "release_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (?, ?, ?)",
        "UPDATE audit_tree_state SET frontier = ? WHERE id = 1",
    ),
    "postgresql": (
        "UPDATE audit_tree_state SET size = size + 1 WHERE id = 1 RETURNING size, frontier",
        'INSERT INTO audit_events ("index", occurred_at, request_id, actor, organisation, role, '
        "action, resource, agreement_id, decision, reason, query_hash, epsilon_spent, "
        "release_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        "INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (%s, %s, %s)",
        "UPDATE audit_tree_state SET frontier = %s WHERE id = 1",
    ),
}


def _sqlite_time(moment: datetime) -> str:
    # The text SQLAlchemy's SQLite DateTime stores and reads back (UTC, no offset).
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def append_event(connection: Connection, event: AuditEvent) -> int:
    """Append ``event`` inside the caller's transaction; return its index in the log."""
    dialect = connection.dialect.name
    claim, insert_event, insert_node, save_frontier = _SQL[
        "postgresql" if dialect == "postgresql" else "sqlite"
    ]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(claim)
        claimed = cursor.fetchone()
        if claimed is None:
            raise RuntimeError("the audit ledger is not initialised: run `hub db upgrade`")
        index = int(claimed[0]) - 1
        # Store exactly what the leaf commits to: UTC to the microsecond.
        event = _normalised(event)
        leaf = record_leaf_hash(event_record(index, event))
        frontier, completed = merkle.append_leaf(merkle.unpack(bytes(claimed[1])), index, leaf)
        moment: datetime | str = (
            event.occurred_at if dialect == "postgresql" else _sqlite_time(event.occurred_at)
        )
        cursor.execute(
            insert_event,
            (
                index,
                moment,
                event.request_id,
                event.actor,
                event.organisation,
                event.role,
                event.action,
                event.resource,
                event.agreement_id,
                event.decision,
                event.reason,
                event.query_hash,
                event.epsilon_spent,
                event.release_id,
            ),
        )
        cursor.executemany(insert_node, completed)
        cursor.execute(save_frontier, (merkle.pack(frontier),))
    finally:
        cursor.close()
    return index


def _normalised(event: AuditEvent) -> AuditEvent:
    epsilon = None if event.epsilon_spent is None else float(event.epsilon_spent)
    return replace(event, occurred_at=as_utc(event.occurred_at), epsilon_spent=epsilon)
