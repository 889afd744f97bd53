"""The ledger in the database: tree size, roots, proofs, checkpoints, event reads.

Roots and proofs read only the O(log n) stored perfect-subtree nodes they need, in one query.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Engine, and_, insert, or_, select
from sqlalchemy.exc import IntegrityError

from hub.audit import merkle, notes
from hub.audit.events import as_utc, record_from_row, record_leaf_hash
from hub.audit.tables import checkpoints, tree_nodes, tree_state
from hub.models import AuditEventRow


class LedgerError(ValueError):
    """A request the ledger cannot answer (an index or size outside the tree)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class NoteSigner:
    """Signs checkpoints as ``name`` (the origin) with the hub's Ed25519 key."""

    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def from_key_file(cls, name: str, path: Path) -> NoteSigner:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return cls(name, key)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def verifier_key(self) -> str:
        return notes.verifier_key(self.name, self.public_key)


def tree_size(connection: Connection) -> int:
    size = connection.execute(select(tree_state.c.size).where(tree_state.c.id == 1)).scalar()
    return int(size or 0)


def read_nodes(connection: Connection, wanted: set[merkle.Node]) -> dict[merkle.Node, bytes]:
    if not wanted:
        return {}
    rows = connection.execute(
        # An OR of primary-key lookups: both databases answer it from the index.
        select(tree_nodes.c.level, tree_nodes.c.idx, tree_nodes.c.hash).where(
            or_(*(and_(tree_nodes.c.level == lv, tree_nodes.c.idx == i) for lv, i in wanted))
        )
    )
    found = {(int(lv), int(i)): bytes(h) for lv, i, h in rows}
    missing = wanted - found.keys()
    if missing:
        level, index = min(missing, key=lambda node: node[1] << node[0])
        raise LedgerError(
            "tree_incomplete",
            f"the stored tree lacks node (level {level}, index {index}): "
            "run `hub audit verify --database`",
        )
    return found


def _check_size(connection: Connection, size: int, what: str) -> None:
    current = tree_size(connection)
    if size > current:
        raise LedgerError("size_beyond_tree", f"{what} {size} is beyond the log's size {current}.")


def root_at(connection: Connection, size: int) -> bytes:
    if size == 0:
        return merkle.EMPTY_ROOT
    _check_size(connection, size, "size")
    nodes = read_nodes(connection, merkle.nodes_for_ranges([(0, size)]))
    return merkle.range_hash(0, size, nodes)


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    root: bytes
    proof: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    first_root: bytes
    second_root: bytes
    proof: list[bytes]


def inclusion_proof(connection: Connection, index: int, size: int) -> InclusionProof:
    if size < 1:
        raise LedgerError("invalid_size", "size must be at least 1 for an inclusion proof.")
    if index >= size:
        raise LedgerError("index_out_of_range", f"index {index} is not below the tree size {size}.")
    _check_size(connection, size, "size")
    ranges = merkle.inclusion_ranges(index, size)
    wanted = merkle.nodes_for_ranges([*ranges, (0, size)]) | {(0, index)}
    nodes = read_nodes(connection, wanted)
    return InclusionProof(
        index=index,
        size=size,
        leaf_hash=nodes[(0, index)],
        root=merkle.range_hash(0, size, nodes),
        proof=[merkle.range_hash(a, b, nodes) for a, b in ranges],
    )


def consistency_proof(connection: Connection, first: int, second: int) -> ConsistencyProof:
    if first < 1 or second < 1:
        raise LedgerError(
            "invalid_size", "first and second must be at least 1: every tree extends size 0."
        )
    if first > second:
        raise LedgerError(
            "first_after_second", f"first ({first}) must not be greater than second ({second})."
        )
    _check_size(connection, second, "second")
    ranges = merkle.consistency_ranges(first, second)
    nodes = read_nodes(connection, merkle.nodes_for_ranges([*ranges, (0, first), (0, second)]))
    return ConsistencyProof(
        first=first,
        second=second,
        first_root=merkle.range_hash(0, first, nodes),
        second_root=merkle.range_hash(0, second, nodes),
        proof=[merkle.range_hash(a, b, nodes) for a, b in ranges],
    )


# --- checkpoints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    origin: str
    note: str
    created_at: datetime


def _stored(row: Mapping[Any, Any]) -> StoredCheckpoint:
    return StoredCheckpoint(
        size=int(row["size"]),
        root=bytes(row["root"]),
        origin=row["origin"],
        note=row["note"],
        created_at=as_utc(row["created_at"]),
    )


def latest_checkpoint(connection: Connection) -> StoredCheckpoint | None:
    row = (
        connection.execute(select(checkpoints).order_by(checkpoints.c.size.desc()).limit(1))
        .mappings()
        .first()
    )
    return _stored(row) if row else None


def all_checkpoints(connection: Connection) -> list[StoredCheckpoint]:
    rows = connection.execute(select(checkpoints).order_by(checkpoints.c.size)).mappings()
    return [_stored(row) for row in rows]


def make_checkpoint(engine: Engine, signer: NoteSigner) -> StoredCheckpoint:
    """Sign and store a checkpoint of the tree as it is now (or return the one at this size)."""
    with engine.begin() as connection:
        size = tree_size(connection)
        latest = latest_checkpoint(connection)
        if latest is not None and latest.size >= size:
            return latest
        checkpoint = notes.Checkpoint(signer.name, size, root_at(connection, size))
        note = notes.sign_checkpoint(checkpoint, signer.name, signer.private_key)
        stored = StoredCheckpoint(size, checkpoint.root, signer.name, note, datetime.now(UTC))
        try:
            with connection.begin_nested():
                connection.execute(
                    insert(checkpoints).values(
                        size=size,
                        root=checkpoint.root,
                        origin=signer.name,
                        note=note,
                        created_at=stored.created_at,
                    )
                )
        except IntegrityError:
            # Another process signed this size first; both notes commit to the same root.
            found = latest_checkpoint(connection)
            assert found is not None
            return found
        return stored


# --- events ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    actor: str | None = None
    organisation: str | None = None
    action: str | None = None
    agreement: str | None = None
    decision: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def select_events(
    connection: Connection, where: EventFilter, *, after: int | None, limit: int
) -> list[dict[str, Any]]:
    query = select(AuditEventRow.__table__).order_by(AuditEventRow.index).limit(limit)
    if after is not None:
        query = query.where(AuditEventRow.index > after)
    for column, value in (
        (AuditEventRow.actor, where.actor),
        (AuditEventRow.organisation, where.organisation),
        (AuditEventRow.action, where.action),
        (AuditEventRow.agreement_id, where.agreement),
        (AuditEventRow.decision, where.decision),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(AuditEventRow.occurred_at >= as_utc(where.since))
    if where.until is not None:
        query = query.where(AuditEventRow.occurred_at < as_utc(where.until))
    return [record_from_row(row) for row in connection.execute(query).mappings()]


def iter_export(engine: Engine, *, batch: int = 5000) -> Iterator[dict[str, Any]]:
    """Every event up to the tree's size when the export starts, in index order, with its
    stored leaf hash (``leaf_hash``, base64) alongside the leaf record."""
    import base64

    with engine.connect() as connection:
        size = tree_size(connection)
        start = 0
        while start < size:
            end = min(start + batch, size)
            events = connection.execute(
                select(AuditEventRow.__table__)
                .where(AuditEventRow.index >= start, AuditEventRow.index < end)
                .order_by(AuditEventRow.index)
            ).mappings()
            leaves: dict[int, bytes] = dict(
                connection.execute(
                    select(tree_nodes.c.idx, tree_nodes.c.hash).where(
                        tree_nodes.c.level == 0, tree_nodes.c.idx >= start, tree_nodes.c.idx < end
                    )
                ).all()
            )
            for row in events:
                record = record_from_row(row)
                leaf = leaves.get(record["index"])
                record["leaf_hash"] = (
                    base64.b64encode(bytes(leaf)).decode("ascii") if leaf is not None else None
                )
                yield record
            start = end


def recompute_leaf(row: Mapping[Any, Any]) -> bytes:
    return record_leaf_hash(record_from_row(row))
