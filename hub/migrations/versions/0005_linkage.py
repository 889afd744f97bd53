"""linkage: persons and record_persons (issue 4)

Revision ID: 0005
Revises: 0003, 0004 (joins the identity and audit-ledger branches)
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = ("0003", "0004")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "persons",
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("linkage_domain", sa.String(length=64), nullable=False),
        sa.Column("key_version", sa.SmallInteger(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_persons")),
    )
    op.create_index("ix_persons_domain", "persons", ["linkage_domain", "key_version"])
    op.create_table(
        "record_persons",
        sa.Column("upload_pk", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("link_level", sa.SmallInteger(), nullable=True),
        sa.Column("link_key", sa.String(length=40), nullable=True),
        sa.Column("rank_in_dataset", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_pk", "row"],
            ["records.upload_pk", "records.row"],
            name="fk_record_persons_record",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_pk", "row", name=op.f("pk_record_persons")),
    )
    op.create_index("ix_record_persons_person", "record_persons", ["person_id"])


def downgrade() -> None:
    op.drop_index("ix_record_persons_person", table_name="record_persons")
    op.drop_table("record_persons")
    op.drop_index("ix_persons_domain", table_name="persons")
    op.drop_table("persons")
