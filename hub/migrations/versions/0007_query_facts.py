"""query facts: record_persons also holds each record's event date, dimension values (as codes
from the new dimension_values table) and first-in-cell marks, so DP counts read one table
(issue 5)

The table is rebuilt rather than altered so that the columns a count reads come first, the
fixed-width ones before the text ones: PostgreSQL and SQLite decode a row's columns in order,
and a count over 10 million rows should not decode person ids and link keys it never uses.
Existing links are copied (person ids are kept); their facts are NULL until the linkage
service next starts, which rewrites every row whose ``first_mask`` is NULL.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPY_LINKS = (
    'INSERT INTO record_persons (upload_pk, "row", rank_in_dataset, link_level, dataset, '
    'person_id, link_key) SELECT upload_pk, "row", rank_in_dataset, link_level, dataset, '
    "person_id, link_key FROM record_persons_old"
)


def _record_persons(name: str, *facts: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(
        name,
        sa.Column("upload_pk", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("rank_in_dataset", sa.Integer(), nullable=False),
        *facts,
        sa.Column("link_level", sa.SmallInteger(), nullable=True),
        sa.Column("dataset", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("link_key", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["upload_pk", "row"],
            ["records.upload_pk", "records.row"],
            name="fk_record_persons_record",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("upload_pk", "row", name="pk_record_persons"),
        # SQLite: rows stored in primary-key order, so the records of an agreement's uploads
        # are one range scan (with a rowid, every row was an index probe then a table probe)
        sqlite_with_rowid=False,
    )
    op.create_index("ix_record_persons_person", name, ["person_id"])


def _facts() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("first_mask", sa.BigInteger(), nullable=True),
        sa.Column("event_date", sa.Date(), nullable=True),
        *(
            sa.Column(name, sa.SmallInteger(), nullable=True)
            for name in ("month", "borough", "sex", "age_band", "offence_group", "weapon")
        ),
    ]


def _rebuild(*facts: sa.Column) -> None:  # type: ignore[type-arg]
    """Move record_persons aside, create it anew with ``facts``, copy the links back."""
    op.drop_index("ix_record_persons_person", table_name="record_persons")
    if op.get_bind().dialect.name == "postgresql":  # constraint names are schema-wide there
        op.execute("ALTER TABLE record_persons RENAME CONSTRAINT pk_record_persons TO pk_rp_old")
    op.rename_table("record_persons", "record_persons_old")
    _record_persons("record_persons", *facts)
    op.execute(COPY_LINKS)
    op.drop_table("record_persons_old")


def upgrade() -> None:
    op.create_table(
        "dimension_values",
        sa.Column("dimension", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("code", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("dimension", "value", name="pk_dimension_values"),
        sa.UniqueConstraint("dimension", "code", name="uq_dimension_values_code"),
    )
    _rebuild(*_facts())


def downgrade() -> None:
    _rebuild()
    op.drop_table("dimension_values")
