"""The ledger's tables (created by migration 0004): tree nodes, tree state, checkpoints.

``audit_events`` (hub.models.AuditEventRow) holds the events; these hold the Merkle tree over
them. Events, nodes and checkpoints are append-only, enforced by triggers in the database.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, LargeBinary, SmallInteger, Table, Text

from hub.models import Base

APPEND_ONLY_TABLES = ("audit_events", "audit_tree_nodes", "audit_checkpoints")

tree_nodes = Table(
    "audit_tree_nodes",
    Base.metadata,
    Column("level", SmallInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

tree_state = Table(
    "audit_tree_state",
    Base.metadata,
    # One row (id = 1): the serialisation point of appends. ``frontier`` holds the hashes of
    # the perfect subtrees of [0, size), largest first, so an append needs no node reads.
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
    Column("frontier", LargeBinary, nullable=False),
)

checkpoints = Table(
    "audit_checkpoints",
    Base.metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("origin", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
