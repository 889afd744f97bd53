"""record_attribute_batches: every kept attribute of a batch of records, column by column;
``records.attributes`` keeps only the attributes queries read (issue 2: ingest speed)

Existing records keep their full attributes JSON (queries read the same keys from it) and get
no batches: nothing is moved, so the upgrade is instant whatever the store holds.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_attribute_batches",
        sa.Column("upload_pk", sa.Integer(), nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_pk"],
            ["uploads.id"],
            name=op.f("fk_record_attribute_batches_upload_pk_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_pk", "first_row", name=op.f("pk_record_attribute_batches")),
    )


def downgrade() -> None:
    op.drop_table("record_attribute_batches")
