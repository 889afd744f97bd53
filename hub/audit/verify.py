"""Verification of the audit log: offline from an export, or server-side from the database.

Both recompute every leaf from the events themselves and stop at the first event that fails,
naming its index and why.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, select

from hub.audit import merkle, notes
from hub.audit.events import RECORD_FIELDS, record_leaf_hash
from hub.audit.ledger import all_checkpoints, recompute_leaf, tree_size
from hub.audit.tables import tree_nodes, tree_state
from hub.models import AuditEventRow


class VerificationFailed(Exception):
    """Verification failed; ``index`` is the first event that fails, when one can be named."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        where = f"event {index}: " if index is not None else ""
        super().__init__(where + reason)
        self.index = index
        self.reason = reason


@dataclass(frozen=True)
class Verified:
    size: int  # events covered by the checkpoint and verified
    root: bytes
    events_read: int
    previous_size: int | None = None


# --- offline, from a JSON Lines export ------------------------------------------------------


def verify_export(
    lines: Iterable[str | bytes],
    checkpoint_note: str,
    key_name: str,
    public_key: Ed25519PublicKey,
    *,
    origin: str | None = None,
    previous_note: str | None = None,
) -> Verified:
    """Check every leaf, the root, the checkpoint's signature and origin, and consistency
    with an older checkpoint (from the recomputed tree). Raise ``VerificationFailed``."""
    checkpoint = _open(checkpoint_note, key_name, public_key, origin, "checkpoint")
    previous = None
    if previous_note is not None:
        previous = _open(previous_note, key_name, public_key, origin, "previous checkpoint")
        if previous.size > checkpoint.size:
            raise VerificationFailed(
                f"the previous checkpoint (size {previous.size}) is newer than the checkpoint "
                f"(size {checkpoint.size}): the log cannot shrink"
            )
    builder = merkle.TreeBuilder()
    _check_prefix(builder, previous, checkpoint)
    events_read = 0
    for line in lines:
        index = events_read
        events_read += 1
        if index >= checkpoint.size:
            # newer than the checkpoint, so not covered by it; but junk appended to an export
            # (or a truncated copy) must not pass as "a later event"
            try:
                _export_leaf(line, index)
            except VerificationFailed as failure:
                raise VerificationFailed(
                    f"not a valid audit event (after the {checkpoint.size} events the "
                    f"checkpoint covers): {failure.reason}",
                    index,
                ) from None
            continue
        builder.append(_export_leaf(line, index))
        _check_prefix(builder, previous, checkpoint)
    if builder.size < checkpoint.size:
        raise VerificationFailed(
            f"the export ends after {builder.size} events but the checkpoint covers "
            f"{checkpoint.size}: this event and those after it are missing",
            builder.size,
        )
    return Verified(
        checkpoint.size,
        checkpoint.root,
        events_read,
        previous.size if previous is not None else None,
    )


def _open(
    note: str, name: str, key: Ed25519PublicKey, origin: str | None, what: str
) -> notes.Checkpoint:
    try:
        return notes.open_checkpoint(note, name, key, origin=origin)
    except notes.NoteError as error:
        raise VerificationFailed(f"{what}: {error}") from None


def _check_prefix(
    builder: merkle.TreeBuilder,
    previous: notes.Checkpoint | None,
    checkpoint: notes.Checkpoint,
) -> None:
    if previous is not None and builder.size == previous.size:  # noqa: SIM102
        if builder.root() != previous.root:
            raise VerificationFailed(
                f"the first {previous.size} events do not make the previous checkpoint's root: "
                "the log was rewritten after that checkpoint was signed "
                "(an event before this index changed)",
                previous.size - 1 if previous.size else None,
            )
    if builder.size == checkpoint.size and builder.root() != checkpoint.root:
        raise VerificationFailed(
            f"the first {checkpoint.size} events do not make the checkpoint's root, though each "
            "matches its leaf hash: the export was altered and its hashes recomputed; fetch "
            "inclusion proofs from the hub to find the event",
            None,
        )


def _export_leaf(line: str | bytes, index: int) -> bytes:
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise VerificationFailed(
            "its line is not valid JSON (the export was altered)", index
        ) from None
    except RecursionError:
        raise VerificationFailed(
            "its line is nested too deeply to be an event (the export was altered)", index
        ) from None
    if not isinstance(record, dict):
        raise VerificationFailed("its line is not a JSON object", index)
    stated = record.pop("leaf_hash", None)
    if set(record) != set(RECORD_FIELDS):
        extra = sorted(set(record) ^ set(RECORD_FIELDS))
        raise VerificationFailed(f"it has unexpected or missing fields {extra}", index)
    if record["index"] != index or isinstance(record["index"], bool):
        raise VerificationFailed(
            f"the export has index {record['index']!r} where {index} was expected "
            "(an event was removed, inserted or reordered)",
            index,
        )
    leaf = record_leaf_hash(record)
    if stated is not None:
        try:
            stated_hash = base64.b64decode(stated, validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise VerificationFailed("its leaf_hash is not base64", index) from None
        if stated_hash != leaf:
            raise VerificationFailed(
                "its content does not match its leaf hash (the event was altered)", index
            )
    return leaf


# --- server-side, from the database ---------------------------------------------------------


@dataclass(frozen=True)
class DatabaseVerified:
    size: int
    root: bytes
    checkpoints: int


def verify_database(
    engine: Engine, key_name: str, public_key: Ed25519PublicKey, *, batch: int = 20_000
) -> DatabaseVerified:
    """Recompute every leaf from the event rows, every stored node from the level below,
    and every stored checkpoint's root and signature. Raise ``VerificationFailed``."""
    with engine.connect() as connection:
        size = tree_size(connection)
        stored = all_checkpoints(connection)
        wanted = {c.size for c in stored}
        roots = {0: merkle.EMPTY_ROOT}
        builder = merkle.TreeBuilder()
        for index, row_leaf, stored_leaf in _leaves(connection, batch):
            if index != builder.size:
                missing = builder.size
                if index < size or missing < size:
                    raise VerificationFailed(
                        "the event row is missing (deleted behind the ledger's back)", missing
                    )
            if index >= size:
                raise VerificationFailed(
                    f"the event row is beyond the tree's size {size}: it was inserted "
                    "without append_event (behind the ledger's back)",
                    index,
                )
            if stored_leaf is None:
                raise VerificationFailed("the tree has no leaf for this event", index)
            if row_leaf != stored_leaf:
                raise VerificationFailed(
                    "the event row does not match its leaf hash (edited or reordered)", index
                )
            builder.append(row_leaf)
            if builder.size in wanted:
                roots[builder.size] = builder.root()
        if builder.size < size:
            raise VerificationFailed(
                "the event row is missing (deleted behind the ledger's back)", builder.size
            )
        _verify_interior_nodes(connection, size, batch)
        frontier = connection.execute(
            select(tree_state.c.frontier).where(tree_state.c.id == 1)
        ).scalar_one()
        if merkle.unpack(bytes(frontier)) != builder.frontier:
            raise VerificationFailed("the tree state's frontier does not match the events")
    previous_size = 0
    for checkpoint in stored:
        try:
            opened = notes.open_checkpoint(checkpoint.note, key_name, public_key)
        except notes.NoteError as error:
            raise VerificationFailed(f"checkpoint at size {checkpoint.size}: {error}") from None
        if opened.size != checkpoint.size or roots.get(checkpoint.size) != opened.root:
            raise VerificationFailed(
                f"the events do not make the root signed at size {checkpoint.size}: an event "
                f"in [{previous_size}, {checkpoint.size}) was changed together with its tree "
                "nodes",
                previous_size,
            )
        previous_size = checkpoint.size
    return DatabaseVerified(size, builder.root(), len(stored))


def _leaves(connection: Connection, batch: int) -> Iterator[tuple[int, bytes, bytes | None]]:
    after = -1
    while True:
        rows = (
            connection.execute(
                select(AuditEventRow.__table__)
                .where(AuditEventRow.index > after)
                .order_by(AuditEventRow.index)
                .limit(batch)
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        first, last = int(rows[0]["index"]), int(rows[-1]["index"])
        stored: dict[int, bytes] = dict(
            connection.execute(
                select(tree_nodes.c.idx, tree_nodes.c.hash).where(
                    tree_nodes.c.level == 0, tree_nodes.c.idx >= first, tree_nodes.c.idx <= last
                )
            ).all()
        )
        for row in rows:
            index = int(row["index"])
            leaf = stored.get(index)
            yield index, recompute_leaf(row), bytes(leaf) if leaf is not None else None
        after = last


def _level(connection: Connection, level: int, batch: int) -> Iterator[tuple[int, bytes]]:
    after = -1
    while True:
        rows = connection.execute(
            select(tree_nodes.c.idx, tree_nodes.c.hash)
            .where(tree_nodes.c.level == level, tree_nodes.c.idx > after)
            .order_by(tree_nodes.c.idx)
            .limit(batch)
        ).all()
        if not rows:
            return
        for idx, value in rows:
            yield int(idx), bytes(value)
        after = int(rows[-1][0])


def _verify_interior_nodes(connection: Connection, size: int, batch: int) -> None:
    """Each stored node at level L must be the hash of its two children at level L-1 (already
    checked), and a level holds exactly the complete nodes of a tree of ``size`` leaves."""
    for level in range(0, size.bit_length()):
        expected_count = size >> level
        children = _level(connection, level - 1, batch) if level else None
        count = 0
        for idx, value in _level(connection, level, batch):
            if idx != count or idx >= expected_count:
                raise VerificationFailed(
                    f"the stored tree has an unexpected node (level {level}, index {idx})",
                    min(idx, count) << level,
                )
            if children is not None:
                left, right = next(children), next(children)
                if merkle.node_hash(left[1], right[1]) != value:
                    raise VerificationFailed(
                        f"the stored tree node (level {level}, index {idx}) is not the hash of "
                        "its children (the tree was altered)",
                        idx << level,
                    )
            count += 1
        if count != expected_count:
            raise VerificationFailed(
                f"the stored tree lacks node (level {level}, index {count})", count << level
            )
