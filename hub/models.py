"""The hub's tables.

What is stored is only what an agreement allows: records hold generalised quasi-identifiers and
attributes; record keys hold keyed-hash pseudonyms (HMAC-SHA256 digests) and their key version.
No table has a column for a raw direct identifier.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONDocument = JSON().with_variant(JSONB(), "postgresql")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class AgreementRow(Base):
    """One registered version of a data-sharing agreement, as signed."""

    __tablename__ = "agreements"

    agreement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    document: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    document_sha256: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    suspension_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class UploadRow(Base):
    """One accepted extract file and its signed receipt."""

    __tablename__ = "uploads"
    __table_args__ = (
        # `live` is 1 while the upload's rows are stored and NULL once withdrawn: NULLs never
        # collide in a unique constraint, so a withdrawn file may be uploaded again.
        UniqueConstraint("agreement_id", "dataset", "sha256", "live", name="uq_uploads_file"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    upload_id: Mapped[str] = mapped_column(String(40), unique=True)
    agreement_id: Mapped[str] = mapped_column(String(64))
    agreement_version: Mapped[int] = mapped_column(Integer)
    dataset: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    rows_read: Mapped[int] = mapped_column(Integer)
    rows_accepted: Mapped[int] = mapped_column(Integer)
    rows_rejected: Mapped[int] = mapped_column(Integer)
    key_version: Mapped[int] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(16))
    live: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    receipt: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class RecordRow(Base):
    """One accepted extract row: generalised quasi-identifiers, the attributes queries read
    (dimensions and numeric measures: ``hub.records.queried_attributes``), and the row's
    keyed-hash match keys (packed: see ``privacy.matchkeys.pack_match_keys``). Every attribute
    the agreement keeps is in ``record_attribute_batches``."""

    # No secondary index: queries reach records through their uploads (the primary key's
    # prefix), and an index on (dataset, event_date) cost ~5 µs per row at ingest at 1M rows.
    __tablename__ = "records"

    upload_pk: Mapped[int] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset: Mapped[str] = mapped_column(String(64))
    event_date: Mapped[date] = mapped_column(Date)
    borough_gss_code: Mapped[str | None] = mapped_column(String(9), nullable=True)
    sex: Mapped[str | None] = mapped_column(String(16), nullable=True)
    age_band: Mapped[str | None] = mapped_column(String(8), nullable=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    key_version: Mapped[int] = mapped_column(SmallInteger)
    match_key_mask: Mapped[int] = mapped_column(Integer)
    match_keys: Mapped[bytes] = mapped_column(LargeBinary)


class _RecordBatchColumns:
    """One batch of an upload's records stored column-wise: ``body`` is a compressed
    Parquet file (Arrow IPC in batches stored before) whose ``row`` column names the records
    (``hub.records.batch_blob``)."""

    upload_pk: Mapped[int] = mapped_column(
        ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True
    )
    first_row: Mapped[int] = mapped_column(Integer, primary_key=True)
    rows: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class RecordAttributeBatchRow(_RecordBatchColumns, Base):
    """Every attribute the agreement keeps for one batch of an upload's records, column by
    column: a zstd-compressed columnar file (``hub.records.batch_blob``) with a ``row`` column
    and one typed column per attribute. Stored per batch rather than per row because a row's
    attributes as JSON were ~600 bytes, most of an upload's write time; column-wise and
    compressed they are a few tens of bytes per record."""

    __tablename__ = "record_attribute_batches"


class RecordAnchorBatchRow(_RecordBatchColumns, Base):
    """The keyed anchors and hardened name CLKs of one batch of an upload's records
    (``privacy.linkage.anchors``, ``privacy.linkage.bloom``). ``body``: a columnar file
    (``hub.records.batch_blob``) with a ``row`` column, the 64-bit fingerprint of each anchor
    (null where an input was missing) and ``bloom_named``. ``clks``: each record's
    ``bloom_name_clk`` (the folded, balanced, keyed-permuted Bloom filter of its forename and
    surname bigrams, where it has both; ``hub.records.clk_blob``), null for batches stored
    before the hub kept them. The linker attaches records without names (A&E) to persons
    through the anchors and joins misspelt names through the CLKs; they hold no value, only
    keyed digests and hardened bits."""

    __tablename__ = "record_anchor_batches"

    clks: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class AuditEventRow(Base):
    """One audit event. Append-only: the Merkle ledger (issue 6) makes tampering evident."""

    __tablename__ = "audit_events"

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    actor: Mapped[str | None] = mapped_column(String(200), nullable=True)
    organisation: Mapped[str | None] = mapped_column(String(64), nullable=True)
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str | None] = mapped_column(String(300), nullable=True)
    agreement_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str] = mapped_column(Text)
    query_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    epsilon_spent: Mapped[float | None] = mapped_column(Float, nullable=True)
    release_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PersonRow(Base):
    """One linked person (issue 4): an opaque id, unrelated across linkage domains and key
    versions (``privacy.linkage.cascade``), and how many live records it holds."""

    __tablename__ = "persons"
    __table_args__ = (Index("ix_persons_domain", "linkage_domain", "key_version"),)

    person_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    linkage_domain: Mapped[str] = mapped_column(String(64))
    key_version: Mapped[int] = mapped_column(SmallInteger)
    records: Mapped[int] = mapped_column(Integer)


class RecordPersonRow(Base):
    """Which person a record belongs to, the cascade level that first linked it (NULL: not
    linked to any other record) and its rank among its person's records of the same dataset by
    event date (1 = earliest), so DP queries can bound each person's contribution without
    window functions. Deleted with its record.

    It is also the table DP counts read: the record's event date and its value of every query
    dimension (``hub.dimensions``) are copied here, with ``first_mask`` (which dimension sets
    the record is its person's lowest-ranked record for), so a count needs no join and no
    grouping by person. Dimension values are stored as small codes (``DimensionValueRow``):
    PostgreSQL groups 10 million rows by integers about twice as fast as by text. Written only
    by the linkage service."""

    __tablename__ = "record_persons"
    __table_args__ = (
        ForeignKeyConstraint(
            ["upload_pk", "row"],
            ["records.upload_pk", "records.row"],
            ondelete="CASCADE",
            name="fk_record_persons_record",
        ),
        Index("ix_record_persons_person", "person_id"),
        {"sqlite_with_rowid": False},
    )

    # Column order as migration 0007 creates it: what counts read first, fixed width first.
    upload_pk: Mapped[int] = mapped_column(Integer, primary_key=True)
    row: Mapped[int] = mapped_column(Integer, primary_key=True)
    rank_in_dataset: Mapped[int] = mapped_column(Integer)
    first_mask: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    event_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    month: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    borough: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    sex: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    age_band: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    offence_group: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    weapon: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    link_level: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    dataset: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(32))
    link_key: Mapped[str | None] = mapped_column(String(40), nullable=True)


class DimensionValueRow(Base):
    """The code of each value of a query dimension in ``record_persons`` (e.g. borough
    E09000001 -> 1). Values are categories from the extracts' code lists (boroughs, months,
    sex, age bands, offence groups, weapons), never identifiers; codes are assigned by the
    linkage service as values first appear, and never change."""

    __tablename__ = "dimension_values"
    __table_args__ = (UniqueConstraint("dimension", "code", name="uq_dimension_values_code"),)

    dimension: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(100), primary_key=True)
    code: Mapped[int] = mapped_column(SmallInteger)


class QueryBudgetRow(Base):
    """One privacy budget: a recipient organisation, an agreement and a budget period. The row
    is created on demand and updated first in every spending transaction, so it serialises
    spends on the same budget (a row lock on PostgreSQL, the write lock on SQLite)."""

    __tablename__ = "query_budgets"

    organisation: Mapped[str] = mapped_column(String(64), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    updates: Mapped[int] = mapped_column(Integer)


class BudgetSpendRow(Base):
    """One spend of a budget: a release (``release_id``), or the epsilon spent choosing a
    contribution bound for a target-accuracy query that was then refused (``release_id`` NULL)."""

    __tablename__ = "budget_spends"
    __table_args__ = (Index("ix_budget_spends_budget", "organisation", "agreement_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    organisation: Mapped[str] = mapped_column(String(64))
    agreement_id: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    query_hash: Mapped[str] = mapped_column(String(64))
    release_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReleaseRow(Base):
    """One differentially-private release, as returned: the same query (canonical hash) from
    the same organisation under the same agreement gets this row back and spends nothing."""

    __tablename__ = "releases"
    __table_args__ = (
        UniqueConstraint("agreement_id", "organisation", "query_hash", name="uq_releases_query"),
    )

    release_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(64))
    organisation: Mapped[str] = mapped_column(String(64))
    query_hash: Mapped[str] = mapped_column(String(64))
    query: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    result: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    epsilon: Mapped[float] = mapped_column(Float)
    delta: Mapped[float] = mapped_column(Float)
    period: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
