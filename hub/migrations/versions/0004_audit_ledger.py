"""audit ledger: Merkle tree nodes, tree state, signed checkpoints; append-only triggers

Revision ID: 0004
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("audit_events", "audit_tree_nodes", "audit_checkpoints")


def upgrade() -> None:
    op.create_table(
        "audit_tree_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name=op.f("pk_audit_tree_nodes")),
    )
    op.create_table(
        "audit_tree_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_tree_state")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(length=32), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_audit_checkpoints")),
    )
    _backfill()
    if op.get_bind().dialect.name == "postgresql":
        _postgres_append_only()
    else:
        _sqlite_append_only()


def _backfill() -> None:
    """Put the events recorded before the ledger existed into the tree, in index order."""
    from hub.audit.events import record_from_row, record_leaf_hash
    from hub.audit.merkle import append_leaf, pack

    bind = op.get_bind()
    rows = bind.execute(sa.text('SELECT * FROM audit_events ORDER BY "index"')).mappings()
    frontier: list[bytes] = []
    size = 0
    nodes = sa.table("audit_tree_nodes", sa.column("level"), sa.column("idx"), sa.column("hash"))
    for row in rows:
        if int(row["index"]) != size:
            raise RuntimeError(
                f"audit_events has no event {size}: the log was altered before the ledger"
            )
        leaf = record_leaf_hash(record_from_row(row))
        frontier, completed = append_leaf(frontier, size, leaf)
        bind.execute(nodes.insert(), [{"level": lv, "idx": i, "hash": h} for lv, i, h in completed])
        size += 1
    bind.execute(
        sa.text("INSERT INTO audit_tree_state (id, size, frontier) VALUES (1, :size, :frontier)"),
        {"size": size, "frontier": pack(frontier)},
    )


def _sqlite_append_only() -> None:
    for table in APPEND_ONLY:
        for operation in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def _postgres_append_only() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only', TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$
        """
    )
    for table in APPEND_ONLY:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        )
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM PUBLIC")


def downgrade() -> None:
    bind = op.get_bind()
    for table in APPEND_ONLY:
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if bind.dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_tree_state")
    op.drop_table("audit_tree_nodes")
