"""queries: releases, budget spends and the per-budget lock row (issue 5)

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "query_budgets",
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("agreement_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("updates", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "organisation", "agreement_id", "period", name=op.f("pk_query_budgets")
        ),
    )
    op.create_table(
        "budget_spends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("agreement_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("query_hash", sa.String(length=64), nullable=False),
        sa.Column("release_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_spends")),
    )
    op.create_index(
        "ix_budget_spends_budget", "budget_spends", ["organisation", "agreement_id", "period"]
    )
    op.create_table(
        "releases",
        sa.Column("release_id", sa.String(length=40), nullable=False),
        sa.Column("agreement_id", sa.String(length=64), nullable=False),
        sa.Column("organisation", sa.String(length=64), nullable=False),
        sa.Column("query_hash", sa.String(length=64), nullable=False),
        sa.Column("query", JSONDocument, nullable=False),
        sa.Column("result", JSONDocument, nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("release_id", name=op.f("pk_releases")),
        sa.UniqueConstraint(
            "agreement_id", "organisation", "query_hash", name="uq_releases_query"
        ),
    )


def downgrade() -> None:
    op.drop_table("releases")
    op.drop_index("ix_budget_spends_budget", table_name="budget_spends")
    op.drop_table("budget_spends")
    op.drop_table("query_budgets")
