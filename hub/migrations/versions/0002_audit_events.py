"""audit events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:31:33.643557
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("organisation", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=300), nullable=True),
        sa.Column("agreement_id", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("query_hash", sa.String(length=64), nullable=True),
        sa.Column("epsilon_spent", sa.Float(), nullable=True),
        sa.Column("release_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("index", name=op.f("pk_audit_events")),
    )


def downgrade() -> None:

    op.drop_table("audit_events")
