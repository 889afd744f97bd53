"""record_anchor_batches.clks: the hardened, folded name CLK of each record of a batch, for the
linker's Bloom pass (issue 4: misspelt names)

Batches stored before this revision have none (null): their records are compared with no one,
and keep linking by their match keys and anchors.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("record_anchor_batches") as batch:
        batch.add_column(sa.Column("clks", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("record_anchor_batches") as batch:
        batch.drop_column("clks")
