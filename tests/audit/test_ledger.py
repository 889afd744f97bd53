"""The ledger in the database: appends, proofs, checkpoints, append-only, tamper evidence."""

from __future__ import annotations

import io
import json
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hub.api.audit import jsonl_lines
from hub.audit import AuditEvent, append_event, merkle, notes
from hub.audit.ledger import (
    LedgerError,
    NoteSigner,
    consistency_proof,
    inclusion_proof,
    iter_export,
    make_checkpoint,
    root_at,
    tree_size,
)
from hub.audit.verify import VerificationFailed, verify_database, verify_export
from hub.services import Hub
from tests.audit.conftest import append_many, disable_append_only, sample_event


def test_proofs_from_the_database_verify_against_signed_checkpoints(
    ledger: Hub, signer: NoteSigner
) -> None:
    append_many(ledger.engine, 20)
    small = make_checkpoint(ledger.engine, signer)
    append_many(ledger.engine, 17, start=20)
    big = make_checkpoint(ledger.engine, signer)
    assert (small.size, big.size) == (20, 37)
    opened = notes.open_checkpoint(big.note, signer.name, signer.public_key)
    assert opened.size == 37
    with ledger.engine.connect() as connection:
        for size in (1, 20, 37):
            for index in range(size):
                proof = inclusion_proof(connection, index, size)
                merkle.verify_inclusion(index, size, proof.leaf_hash, proof.proof, proof.root)
        for index in range(37):
            proof = inclusion_proof(connection, index, 37)
            merkle.verify_inclusion(index, 37, proof.leaf_hash, proof.proof, opened.root)
        for first in range(1, 38):
            c = consistency_proof(connection, first, 37)
            merkle.verify_consistency(first, 37, c.first_root, opened.root, c.proof)
        assert root_at(connection, 20) == small.root


def test_bad_proof_requests_are_refused(ledger: Hub) -> None:
    append_many(ledger.engine, 5)
    with ledger.engine.connect() as connection:
        for call, code in [
            (lambda: inclusion_proof(connection, 5, 5), "index_out_of_range"),
            (lambda: inclusion_proof(connection, 0, 0), "invalid_size"),
            (lambda: inclusion_proof(connection, 1, 6), "size_beyond_tree"),
            (lambda: consistency_proof(connection, 3, 2), "first_after_second"),
            (lambda: consistency_proof(connection, 0, 2), "invalid_size"),
            (lambda: consistency_proof(connection, 2, 9), "size_beyond_tree"),
        ]:
            with pytest.raises(LedgerError) as raised:
                call()
            assert raised.value.code == code


def test_an_event_rolled_back_with_its_action_leaves_no_trace(ledger: Hub) -> None:
    append_many(ledger.engine, 3)
    with pytest.raises(RuntimeError), ledger.engine.begin() as connection:
        append_event(connection, sample_event(3))
        raise RuntimeError("the action failed")
    with ledger.engine.begin() as connection:
        assert append_event(connection, sample_event(4)) == 3
        assert tree_size(connection) == 4


def test_concurrent_appends_are_serialised(ledger: Hub, signer: NoteSigner) -> None:
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(25):
                with ledger.engine.begin() as connection:
                    append_event(connection, sample_event(offset * 100 + i))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    make_checkpoint(ledger.engine, signer)
    assert verify_database(ledger.engine, signer.name, signer.public_key).size == 100


def _export(ledger: Hub) -> list[str]:
    return list(jsonl_lines(iter_export(ledger.engine)))


def _verify(lines: list[str], note: str, signer: NoteSigner, **kw: str) -> int:
    return verify_export(
        io.StringIO("".join(lines)), note, signer.name, signer.public_key, **kw
    ).size


def test_an_export_verifies_offline_and_each_tampering_names_the_first_bad_event(
    ledger: Hub, signer: NoteSigner
) -> None:
    append_many(ledger.engine, 10)
    old = make_checkpoint(ledger.engine, signer).note
    append_many(ledger.engine, 15, start=10)
    note = make_checkpoint(ledger.engine, signer).note
    lines = _export(ledger)
    assert len(lines) == 25
    assert _verify(lines, note, signer) == 25
    assert _verify(lines, note, signer, previous_note=old) == 25

    def fails(tampered: list[str], **kw: str) -> VerificationFailed:
        with pytest.raises(VerificationFailed) as raised:
            _verify(tampered, note, signer, **kw)
        return raised.value

    # One byte in one event.
    tampered = list(lines)
    tampered[7] = tampered[7].replace('"decision":"allow"', '"decision":"allox"')
    assert fails(tampered).index == 7
    # One byte anywhere in the line: a value, a hash, or the JSON itself.
    for position in range(0, len(lines[12]) - 1, 7):
        tampered = list(lines)
        line = tampered[12]
        tampered[12] = line[:position] + chr(ord(line[position]) ^ 1) + line[position + 1 :]
        failure = fails(tampered)
        assert failure.index == 12, (position, str(failure))
    # Deleted, reordered, inserted.
    assert fails(lines[:4] + lines[5:]).index == 4
    assert fails([*lines[:3], lines[4], lines[3], *lines[5:]]).index == 3
    extra = json.loads(lines[2])
    assert fails([*lines[:2], json.dumps(extra) + "\n", *lines[2:]]).index == 3
    assert fails(lines[:20]).index == 20
    # Altered with recomputed leaf hashes: caught by the root, before the older checkpoint.
    record = json.loads(lines[5])
    record.update(reason="nothing to see", leaf_hash=None)
    rewritten = [*lines[:5], json.dumps(record) + "\n", *lines[6:]]
    assert "previous checkpoint" in str(fails(rewritten, previous_note=old))
    assert "checkpoint's root" in str(fails(rewritten))


def test_bad_checkpoints_are_refused(ledger: Hub, signer: NoteSigner) -> None:
    append_many(ledger.engine, 4)
    note = make_checkpoint(ledger.engine, signer).note
    lines = _export(ledger)
    body, _, signature = note.rpartition("\n\n")
    forged = body.replace("\n4\n", "\n3\n") + "\n\n" + signature
    with pytest.raises(VerificationFailed, match="does not verify"):
        _verify(lines, forged, signer)
    name, blob = signature.strip().split(" ")[1:]
    raw = bytearray(__import__("base64").b64decode(blob))
    raw[-1] ^= 1
    bad_sig = body + "\n\n— " + name + " " + __import__("base64").b64encode(raw).decode() + "\n"
    with pytest.raises(VerificationFailed, match="does not verify"):
        _verify(lines, bad_sig, signer)
    # The same key, signing for another log.
    other = NoteSigner("other.example/audit", signer.private_key)
    with ledger.engine.connect() as connection:
        elsewhere = notes.sign_checkpoint(
            notes.Checkpoint("other.example/audit", 4, root_at(connection, 4)),
            other.name,
            other.private_key,
        )
    with pytest.raises(VerificationFailed, match="no signature by the key"):
        _verify(lines, elsewhere, signer)
    with pytest.raises(VerificationFailed, match="origin"):
        _verify(lines, elsewhere, other, origin=signer.name)
    # A previous checkpoint that is newer than the one given.
    append_many(ledger.engine, 2, start=4)
    newer = make_checkpoint(ledger.engine, signer).note
    with pytest.raises(VerificationFailed, match="cannot shrink"):
        _verify(lines, note, signer, previous_note=newer)


def test_the_database_refuses_updates_and_deletes(ledger: Hub, signer: NoteSigner) -> None:
    append_many(ledger.engine, 3)
    make_checkpoint(ledger.engine, signer)
    for statement in (
        "UPDATE audit_events SET reason = 'x' WHERE \"index\" = 1",
        'DELETE FROM audit_events WHERE "index" = 2',
        "UPDATE audit_tree_nodes SET hash = hash WHERE level = 0",
        "DELETE FROM audit_tree_nodes",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_checkpoints SET note = ''",
    ):
        with pytest.raises(DBAPIError, match="append-only"), ledger.engine.begin() as c:
            c.execute(text(statement))
    assert verify_database(ledger.engine, signer.name, signer.public_key).size == 3


TAMPERING = {
    "edited": ["UPDATE audit_events SET decision = 'allow' WHERE \"index\" = 5"],
    "deleted": ['DELETE FROM audit_events WHERE "index" = 6'],
    "reordered": [
        'UPDATE audit_events SET "index" = -1 WHERE "index" = 7',
        'UPDATE audit_events SET "index" = 7 WHERE "index" = 8',
        'UPDATE audit_events SET "index" = 8 WHERE "index" = -1',
    ],
    "inserted": [
        'INSERT INTO audit_events ("index", occurred_at, action, decision, reason) '
        "VALUES (12, '2026-03-01 10:00:00', 'upload.create', 'allow', 'forged')"
    ],
    "edited-with-its-leaf": [
        "UPDATE audit_events SET reason = 'forged' WHERE \"index\" = 9",
    ],
}
EXPECTED = {"edited": 5, "deleted": 6, "reordered": 7, "inserted": 12, "edited-with-its-leaf": 8}


@pytest.mark.parametrize("kind", TAMPERING)
def test_tampering_behind_the_ledgers_back_is_caught(
    ledger: Hub, signer: NoteSigner, kind: str
) -> None:
    append_many(ledger.engine, 8)
    make_checkpoint(ledger.engine, signer)
    append_many(ledger.engine, 4, start=8)
    latest = make_checkpoint(ledger.engine, signer).note
    exported = _export(ledger)
    with ledger.engine.begin() as connection:
        disable_append_only(connection)
        for statement in TAMPERING[kind]:
            connection.execute(text(statement))
        if kind == "edited-with-its-leaf":
            # A careful attacker rewrites the leaf and every node above it too.
            rows = connection.execute(text('SELECT * FROM audit_events ORDER BY "index"'))
            from hub.audit.ledger import recompute_leaf

            builder_nodes: list[tuple[int, int, bytes]] = []
            frontier: list[bytes] = []
            for i, row in enumerate(rows.mappings()):
                frontier, completed = merkle.append_leaf(frontier, i, recompute_leaf(row))
                builder_nodes.extend(completed)
            connection.execute(text("DELETE FROM audit_tree_nodes"))
            connection.execute(
                text("INSERT INTO audit_tree_nodes (level, idx, hash) VALUES (:l, :i, :h)"),
                [{"l": lv, "i": i, "h": h} for lv, i, h in builder_nodes],
            )
            connection.execute(
                text("UPDATE audit_tree_state SET frontier = :f"), {"f": merkle.pack(frontier)}
            )
    with pytest.raises(VerificationFailed) as raised:
        verify_database(ledger.engine, signer.name, signer.public_key)
    assert raised.value.index == EXPECTED[kind], str(raised.value)
    if kind != "inserted":
        # An export taken after the tampering fails offline against the checkpoint kept.
        with pytest.raises(VerificationFailed):
            _verify(_export(ledger), latest, signer)
        assert _verify(exported, latest, signer) == 12


def test_an_event_inserted_with_sql_is_not_in_the_tree(ledger: Hub, signer: NoteSigner) -> None:
    append_many(ledger.engine, 3)
    with ledger.engine.begin() as connection:
        connection.execute(
            text(
                'INSERT INTO audit_events ("index", occurred_at, action, decision, reason) '
                "VALUES (3, '2026-03-01 10:00:00', 'upload.create', 'allow', 'forged')"
            )
        )
    with pytest.raises(VerificationFailed, match="without append_event") as raised:
        verify_database(ledger.engine, signer.name, signer.public_key)
    assert raised.value.index == 3
    # And the next real append cannot take its place.
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), ledger.engine.begin() as c:
        append_event(c, AuditEvent("x", "allow", "r"))
