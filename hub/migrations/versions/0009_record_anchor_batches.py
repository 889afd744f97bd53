"""record_anchor_batches: the keyed anchors of a batch of records, column by column, for the
linker's anchor stage (issue 4: records without names)

Records stored before this revision have no anchors: they keep linking by their match keys,
and records without names among them stay unlinked until they are uploaded again.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_anchor_batches",
        sa.Column("upload_pk", sa.Integer(), nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_pk"],
            ["uploads.id"],
            name=op.f("fk_record_anchor_batches_upload_pk_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_pk", "first_row", name=op.f("pk_record_anchor_batches")),
    )


def downgrade() -> None:
    op.drop_table("record_anchor_batches")
