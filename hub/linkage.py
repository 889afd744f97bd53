"""The linkage service: joins stored records to persons after each upload commits (issue 4).

Data flows adapter -> pseudonymiser -> store -> **linker** -> DP release. The linker never runs
inside an upload's transaction: ``link_upload`` is called once ``Ingestor.ingest`` has returned
(and ``after_withdrawal`` once ``Ingestor.withdraw`` has), so a slow or failed link can neither
slow nor lose an upload. Records with no ``record_persons`` row are *pending*; every call links
all pending records of the domain first, and ``catch_up`` (at start) does the same for every
domain, so a crash between store and link leaves only pending records, never a half-written
person: each link writes all the persons it changed in one transaction.

State: one :class:`privacy.linkage.cascade.Linker` per linkage domain (current key version), in
memory, rebuilt at start from the stored match keys and the stored person of each record
(``Linker.restore``: no re-linking), then checked against ``persons`` (a person whose record
count no longer matches lost records while the service was down, e.g. a withdrawal that
committed just before a crash: it is re-clustered). Record ids inside the linker are
``"<upload pk>:<row>"``: opaque, stable, never an identifier.

Tables: ``persons`` (person id, domain, key version, live record count) and ``record_persons``
(record -> person id, link level and key, rank of the record within its person's records of
the same dataset by event date, and the query facts DP counts read: event date, dimension codes
and first-in-cell marks, see ``hub.dimensions``; deleted with the record by its foreign key).

One process links per database: run the API with one worker (as ``hub serve`` does); several
workers would each hold a linker and must not both link the same domain.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Connection, Engine, and_, delete, func, select

from hub.bulk import insert_rows
from hub.dimensions import (
    ATTRIBUTE_FIELDS,
    COLUMN_FIELDS,
    DIMENSIONS,
    MONTH,
    encode,
    first_masks,
)
from hub.logs import describe_error
from hub.models import PersonRow, RecordAnchorBatchRow, RecordPersonRow, RecordRow, UploadRow
from hub.records import clks_from_blob, frame_from_blob
from hub.registry import AgreementRegistry
from privacy.linkage.anchors import ANCHOR_COLUMNS, ANCHOR_PASSES, anchor_link
from privacy.linkage.bloom import BLOOM_PASSES, BloomEncoder, bloom_until_stable
from privacy.linkage.cascade import STRONG_SPACES, Linker
from privacy.linkage.stored import stored_fingerprints
from privacy.matchkeys import MATCH_KEYS

log = logging.getLogger("hub.linkage")

BLOOM_LEVEL = 5
"""Link level of records joined by a Bloom pass (levels 1-4 are the cascade's)."""
ANCHOR_LEVEL = 6
"""Link level of records joined by a keyed anchor."""
BLOOM_KEYS: tuple[str, ...] = tuple(bloom_pass.column for bloom_pass in BLOOM_PASSES)
ANCHOR_KEYS: dict[str, str] = {p.name: f"anchor_{p.name}" for p in ANCHOR_PASSES}
LEVELS: dict[str, int] = {
    **{spec.name: spec.level for spec in MATCH_KEYS},
    **{key: BLOOM_LEVEL for key in BLOOM_KEYS},
    **{key: ANCHOR_LEVEL for key in ANCHOR_KEYS.values()},
}
_CLK_DTYPE = pl.Array(pl.UInt64, BloomEncoder.FOLDED_WORDS)
_TOKEN_COLUMNS = [
    "record_id",
    "upload_pk",
    "dataset",
    *ANCHOR_COLUMNS,
    "bloom_named",
    "bloom_name_clk",
    *STRONG_SPACES,
    "local_id",
]
"""What the Bloom and anchor stages read of each record: its upload and dataset, anchors,
hardened name CLK, and its strong identifiers' and agency id's key fingerprints (about 200 bytes
a record, kept in memory with the linker)."""
_TOKEN_SELECT = [
    pl.col(name).cast(pl.Categorical) if name == "dataset" else pl.col(name)
    for name in _TOKEN_COLUMNS
]
_CHUNK = 2_000  # ids per IN (...) list
_FACTS = ["agreement_id", *DIMENSIONS]
"""What the linker keeps of each record besides its ids, for ``record_persons``' query facts
(categorical: a few bytes per record)."""
_META_SCHEMA: dict[str, Any] = {
    "record_id": pl.String,
    "upload_pk": pl.Int64,
    "row": pl.Int64,
    "dataset": pl.String,
    "event_date": pl.Date,
    **{name: pl.Categorical for name in _FACTS},
    "person_id": pl.String,
    "link_key": pl.String,
    "rank_in_dataset": pl.Int64,
    "first_mask": pl.Int64,
}


_META_SCHEMA_KEYS = ["record_id", "upload_pk", "row", "dataset", "event_date", *_FACTS]
_ATTRIBUTE_FIELDS = sorted({f for fields in ATTRIBUTE_FIELDS.values() for f in fields.values()})


_READ_ROWS = 20_000


def _dimension_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Each record's value of every query dimension (``hub.dimensions``), from its columns."""

    def from_attributes(dimension: str) -> pl.Expr:
        value = pl.lit(None, dtype=pl.String)
        for dataset, field in ATTRIBUTE_FIELDS.get(dimension, {}).items():
            value = pl.when(pl.col("dataset") == dataset).then(pl.col(field)).otherwise(value)
        return value

    values = {
        name: pl.col(COLUMN_FIELDS[name]) if name in COLUMN_FIELDS else from_attributes(name)
        for name in DIMENSIONS
        if name != MONTH
    }
    values[MONTH] = pl.col("event_date").dt.strftime("%Y-%m")
    return frame.select(
        pl.col("agreement_id").cast(pl.Categorical),
        *(values[name].cast(pl.String).cast(pl.Categorical).alias(name) for name in DIMENSIONS),
    )


def _frame(rows: Sequence[Sequence[Any]]) -> pl.DataFrame:
    """Driver rows of :meth:`LinkageService._read` as a frame with key fingerprints."""
    width = 15 + len(_ATTRIBUTE_FIELDS)
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * width
    event_date = pl.Series(columns[3], strict=False)
    if event_date.dtype == pl.String:  # SQLite stores dates as ISO text
        event_date = event_date.str.to_date("%Y-%m-%d")
    text = {
        name: pl.Series(columns[i], dtype=pl.String)
        for i, name in enumerate(
            ["agreement_id", "borough_gss_code", "sex", "age_band", *_ATTRIBUTE_FIELDS], start=10
        )
    }
    frame = pl.DataFrame(
        {
            "upload_pk": pl.Series(columns[0], dtype=pl.Int64),
            "row": pl.Series(columns[1], dtype=pl.Int64),
            "dataset": pl.Series(columns[2], dtype=pl.String),
            "event_date": event_date.cast(pl.Date),
            "upload": pl.Series(columns[6], dtype=pl.String),
            "person_id": pl.Series(columns[7], dtype=pl.String),
            "link_key": pl.Series(columns[8], dtype=pl.String),
            "rank_in_dataset": pl.Series(columns[9], dtype=pl.Int64),
            "first_mask": pl.Series(columns[14 + len(_ATTRIBUTE_FIELDS)], dtype=pl.Int64),
            **text,
        }
    )
    frame = pl.concat([frame.drop(list(text)), _dimension_values(frame)], how="horizontal")
    keys = stored_fingerprints(
        np.asarray(columns[4], dtype=np.int64), pl.Series(columns[5], dtype=pl.Binary)
    )
    return pl.concat([frame, keys], how="horizontal")


@dataclass
class _Domain:
    linker: Linker
    meta: pl.DataFrame  # one row per live record the linker holds (see _META_SCHEMA)
    tokens: pl.DataFrame  # the same records' anchor-stage inputs (see _TOKEN_COLUMNS)


def _anchor_batches(rows: Iterable[Sequence[Any]]) -> pl.DataFrame:
    """Stored anchor batches ``(upload_pk, rows, body, clks)`` as one frame keyed by upload and
    row."""
    schema: dict[str, Any] = {
        "upload_pk": pl.Int64,
        "row": pl.Int64,
        **{name: pl.UInt64 for name in ANCHOR_COLUMNS},
        "bloom_named": pl.Boolean,
        "bloom_name_clk": _CLK_DTYPE,
    }
    parts = []
    for upload_pk, records, body, clks in rows:
        part = frame_from_blob(body).with_columns(
            pl.lit(upload_pk, dtype=pl.Int64).alias("upload_pk"),
            # batches stored before the CLKs were kept have none: compared with no one
            pl.lit(None, _CLK_DTYPE).alias("bloom_name_clk")
            if clks is None
            else clks_from_blob(clks, records, BloomEncoder.FOLDED_WORDS),
        )
        parts.append(part.select(pl.col(name).cast(dtype) for name, dtype in schema.items()))
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat(parts)


def _fuzzy_stages(state: _Domain, fresh: Sequence[str]) -> list[str]:
    """Run the Bloom passes (``privacy.linkage.bloom``) and then the anchor stage
    (``privacy.linkage.anchors``) over the domain's clusters, and join what they decide into
    the linker; returns every record of the persons they joined.

    The Bloom passes compare only pairs with a record of ``fresh`` (those a change
    re-examined): other pairs were compared when their records arrived. The anchor stage runs
    over every live record: a few vectorised group-bys, and the only way to see every cluster
    that carries an anchor value (an anchor shared by two named clusters links nothing).
    Clusters joined here stay joined through later uploads."""
    ids, labels = state.linker.labels()
    if not ids:
        return []
    # where each of the linker's records sits in state.tokens: the stages read the tokens in
    # place (the CLK column alone is 128 bytes a record; a reordered copy would double it)
    at = (
        pl.DataFrame({"record_id": ids}, schema={"record_id": pl.String})
        .join(
            state.tokens.select("record_id").with_row_index("at"),
            on="record_id",
            how="left",
            maintain_order="left",
        )
        .get_column("at")
        .to_numpy()
        .astype(np.int64)
    )
    tokens = state.tokens
    if tokens.height != len(ids):  # the service drops this linker and rebuilds it
        raise RuntimeError(f"{tokens.height} token rows for {len(ids)} linked records")
    changed: list[str] = []
    if fresh:
        records = tokens.with_columns(pl.col("upload_pk").alias("upload"))
        among = tokens["record_id"].is_in(pl.Series(fresh, dtype=pl.String).implode()).to_numpy()
        for bloom_pass in BLOOM_PASSES:
            in_tokens = np.empty_like(labels)
            in_tokens[at] = labels
            joined, links = bloom_until_stable(
                records, in_tokens, bloom_pass=bloom_pass, among=among
            )
            if links:
                labels = joined[at]
                changed.extend(state.linker.join(labels, bloom_pass.column))
    tokens = tokens.drop("bloom_name_clk")[at]  # the anchor stage's columns, linker order
    for anchor_pass in ANCHOR_PASSES:
        labels, attached = anchor_link(tokens, labels, anchor_pass=anchor_pass)
        if attached:
            changed.extend(state.linker.join(labels, ANCHOR_KEYS[anchor_pass.name]))
    return changed


def _relinked(state: _Domain) -> list[str]:
    """After a cascade change (add, remove): the records it re-examined, then the Bloom and
    anchor stages run on the result, and the records of the persons that joined; each id
    once."""
    changed = state.linker.last_changed()
    return list(dict.fromkeys([*changed, *_fuzzy_stages(state, changed)]))


def _record_ids(upload_pk: pl.Expr, row: pl.Expr) -> pl.Expr:
    return pl.concat_str([upload_pk.cast(pl.String), row.cast(pl.String)], separator=":")


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


class LinkageService:
    """Links records to persons per linkage domain; see the module docstring."""

    def __init__(
        self,
        engine: Engine,
        agreements: AgreementRegistry,
        master_secret: bytes,
        key_version: int,
    ) -> None:
        self._engine = engine
        self._agreements = agreements
        self._master_secret = master_secret
        self.key_version = key_version
        self._lock = threading.RLock()
        self._domains: dict[str, _Domain] = {}

    def __repr__(self) -> str:  # never show key material
        return f"LinkageService(key_version={self.key_version}, domains={sorted(self._domains)})"

    # ------------------------------------------------------------------ public API

    def link_upload(self, upload_id: str) -> int:
        """Link a committed upload (and anything else pending in its domain). Safe to call
        for an upload already linked, a duplicate receipt or a withdrawn upload. Returns how
        many records were re-examined. Never raises: a failure is logged and the records stay
        pending until the next call or start."""
        try:
            with self._engine.connect() as connection:
                agreement_id = connection.execute(
                    select(UploadRow.agreement_id).where(UploadRow.upload_id == upload_id)
                ).scalar_one_or_none()
            if agreement_id is None:
                return 0
            return self.link_domain(self._domain_of(agreement_id))
        except Exception as error:  # the upload is safe; linking is retried later
            log.error(
                "linking after upload %s failed (%s); its records stay pending",
                upload_id,
                describe_error(error),
            )
            return 0

    def after_withdrawal(self, upload_id: str) -> int:
        """Re-cluster only the persons the withdrawn upload's records belonged to. Never
        raises (see :meth:`link_upload`); at start the persons are checked again."""
        try:
            with self._engine.connect() as connection:
                upload = connection.execute(
                    select(UploadRow.id, UploadRow.agreement_id).where(
                        UploadRow.upload_id == upload_id
                    )
                ).first()
            if upload is None:
                return 0
            domain = self._domain_of(upload.agreement_id)
            with self._lock:
                state = self._domains.get(domain)
                if state is None:  # loading reads only live records and checks persons
                    self._load(domain)
                    return 0
                gone = state.meta.filter(pl.col("upload_pk") == upload.id)
                if gone.height == 0:
                    return 0
                old_persons = gone.get_column("person_id").drop_nulls().unique().to_list()
                state.linker.remove(gone.get_column("record_id").to_list())
                state.meta = state.meta.filter(pl.col("upload_pk") != upload.id)
                state.tokens = state.tokens.join(
                    gone.select("record_id"), on="record_id", how="anti", maintain_order="left"
                )
                # the persons the cascade re-clustered lost their anchor joins: run it again
                return self._write(domain, state, _relinked(state), old_persons)
        except Exception as error:
            log.error(
                "re-linking after withdrawal of %s failed (%s)", upload_id, describe_error(error)
            )
            with self._lock:
                self._domains.pop(self._safe_domain(upload_id), None)
            return 0

    def catch_up(self) -> int:
        """At start: rebuild every domain's linker and link whatever is pending."""
        with self._engine.connect() as connection:
            agreement_ids = (
                connection.execute(select(UploadRow.agreement_id).distinct()).scalars().all()
            )
        domains = sorted({self._domain_of(a) for a in agreement_ids})
        return sum(self.link_domain(domain) for domain in domains)

    def link_domain(self, domain: str) -> int:
        """Link every pending record of one domain (loading its linker if needed)."""
        with self._lock:
            try:
                state = self._domains.get(domain)
                if state is None:
                    return self._load(domain)
                return self._link_pending(domain, state)
            except Exception:
                # The in-memory linker may be ahead of the tables: rebuild it next time.
                self._domains.pop(domain, None)
                raise

    def person_of(self, upload_pk: int, row: int) -> str | None:
        """The stored person id of one record (None while pending)."""
        with self._engine.connect() as connection:
            found: str | None = connection.execute(
                select(RecordPersonRow.person_id).where(
                    RecordPersonRow.upload_pk == upload_pk, RecordPersonRow.row == row
                )
            ).scalar_one_or_none()
        return found

    # ------------------------------------------------------------------ internals

    def _domain_of(self, agreement_id: str) -> str:
        return self._agreements.get(agreement_id).linkage_domain

    def _safe_domain(self, upload_id: str) -> str:
        try:
            with self._engine.connect() as connection:
                agreement_id = connection.execute(
                    select(UploadRow.agreement_id).where(UploadRow.upload_id == upload_id)
                ).scalar_one()
            return self._domain_of(agreement_id)
        except Exception:
            return ""

    def _agreement_ids(self, connection: Connection, domain: str) -> list[str]:
        ids = connection.execute(select(UploadRow.agreement_id).distinct()).scalars().all()
        return [a for a in ids if self._domain_of(a) == domain]

    def _read(
        self, connection: Connection, domain: str, upload_pks: Sequence[int] | None = None
    ) -> pl.DataFrame:
        """Live records of the domain at the current key version, oldest upload first, with
        their stored person (null when pending) and match-key fingerprints."""
        query = (
            select(
                RecordRow.upload_pk,
                RecordRow.row,
                RecordRow.dataset,
                RecordRow.event_date,
                RecordRow.match_key_mask,
                RecordRow.match_keys,
                UploadRow.upload_id,
                RecordPersonRow.person_id,
                RecordPersonRow.link_key,
                RecordPersonRow.rank_in_dataset,
                UploadRow.agreement_id,
                RecordRow.borough_gss_code,
                RecordRow.sex,
                RecordRow.age_band,
                *(RecordRow.attributes[field].as_string() for field in _ATTRIBUTE_FIELDS),
                RecordPersonRow.first_mask,
            )
            .join(UploadRow, UploadRow.id == RecordRow.upload_pk)
            .outerjoin(
                RecordPersonRow,
                and_(
                    RecordPersonRow.upload_pk == RecordRow.upload_pk,
                    RecordPersonRow.row == RecordRow.row,
                ),
            )
            .where(
                UploadRow.agreement_id.in_(self._agreement_ids(connection, domain)),
                UploadRow.status == "stored",
                RecordRow.key_version == self.key_version,
            )
            .order_by(RecordRow.upload_pk, RecordRow.row)
        )
        if upload_pks is not None:
            query = query.where(RecordRow.upload_pk.in_(list(upload_pks)))
        # The driver's rows as they come (no per-value result processing: a million rows are
        # read at start); the statement has only our own ids and integers as literals.
        sql = str(query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}))
        result = connection.exec_driver_sql(sql)
        parts = []
        while True:  # in slices: the raw rows (with their key blobs) never all sit in memory
            rows = result.fetchmany(_READ_ROWS)
            if not rows:
                break
            parts.append(_frame(rows))
        frame = pl.concat(parts) if parts else _frame([])
        record_id = _record_ids(pl.col("upload_pk"), pl.col("row")).alias("record_id")
        anchors = self._read_anchors(connection, domain, upload_pks)
        return frame.with_columns(record_id).join(
            anchors, on=["upload_pk", "row"], how="left", maintain_order="left"
        )

    def _read_anchors(
        self, connection: Connection, domain: str, upload_pks: Sequence[int] | None
    ) -> pl.DataFrame:
        """The stored anchors of the live uploads :meth:`_read` reads (records stored before
        anchors were kept have none: they are read as null and attach nothing)."""
        query = (
            select(
                RecordAnchorBatchRow.upload_pk,
                RecordAnchorBatchRow.rows,
                RecordAnchorBatchRow.body,
                RecordAnchorBatchRow.clks,
            )
            .join(UploadRow, UploadRow.id == RecordAnchorBatchRow.upload_pk)
            .where(
                UploadRow.agreement_id.in_(self._agreement_ids(connection, domain)),
                UploadRow.status == "stored",
                UploadRow.key_version == self.key_version,
            )
        )
        if upload_pks is not None:
            query = query.where(RecordAnchorBatchRow.upload_pk.in_(list(upload_pks)))
        return _anchor_batches(connection.execute(query))

    def _load(self, domain: str) -> int:
        """Rebuild the domain's linker from the tables, repair what a crash left, link the
        pending records."""
        linker = Linker(self._master_secret, domain, self.key_version)
        with self._engine.connect() as connection:
            frame = self._read(connection, domain)
            stored_counts = dict(
                connection.execute(
                    select(PersonRow.person_id, PersonRow.records).where(
                        PersonRow.linkage_domain == domain,
                        PersonRow.key_version == self.key_version,
                    )
                ).all()
            )
        pending = frame.filter(pl.col("person_id").is_null())
        linked = frame.filter(pl.col("person_id").is_not_null())
        del frame  # the key columns live on only in the linker's fingerprint matrix
        if linked.height:
            linker.restore(linked.rename({"person_id": "person"}))
        state = _Domain(linker, linked.select(list(_META_SCHEMA)), linked.select(_TOKEN_SELECT))
        linked = state.meta
        self._domains[domain] = state
        examined = 0
        if linked.height:
            # persons that lost records while no linker ran, or whose id does not follow from
            # the restored order (e.g. two uploads linked out of order): re-cluster them
            live_counts = linked.group_by("person_id").len()
            damaged = set(
                live_counts.filter(
                    pl.col("len")
                    != pl.col("person_id").replace_strict(
                        stored_counts, default=-1, return_dtype=pl.Int64
                    )
                )
                .get_column("person_id")
                .to_list()
            )
            computed = linker.assignments(linked.get_column("record_id").to_list())
            moved = linked.get_column("person_id") != computed.get_column("person_id")
            damaged.update(linked.filter(moved).get_column("person_id").to_list())
            del computed, moved
            gone = set(stored_counts) - set(live_counts.get_column("person_id").to_list())
            relinked: list[str] = []
            if damaged or gone:
                ids = linked.filter(pl.col("person_id").is_in(list(damaged)))
                linker.relink(ids.get_column("record_id").to_list())
                relinked = linker.last_changed() if damaged else []
                examined += self._write(domain, state, relinked, sorted(gone))
            # rows stored before record_persons held query facts (migration 0007): rewrite
            # their persons' rows as they are, without re-linking
            unmarked_persons = (
                linked.filter(pl.col("first_mask").is_null()).get_column("person_id").unique()
            )
            unmarked = linked.filter(
                pl.col("person_id").is_in(unmarked_persons.implode())
                & ~pl.col("person_id").is_in(list(damaged))
            )
            if unmarked.height:
                examined += self._write(
                    domain, state, unmarked.get_column("record_id").to_list(), []
                )
            # joins the stored persons do not reflect yet: anchors for uploads linked by a hub
            # that did not run the anchor stage, Bloom and anchors for persons re-clustered
            # above
            examined += self._write(domain, state, _fuzzy_stages(state, relinked), [])
        del linked
        return examined + self._link_frame(domain, state, pending)

    def _link_pending(self, domain: str, state: _Domain) -> int:
        """Link the uploads of the domain the linker has not seen (each upload is written in
        one transaction, so an upload is either wholly linked or wholly pending)."""
        with self._engine.connect() as connection:
            live = (
                connection.execute(
                    select(UploadRow.id).where(
                        UploadRow.agreement_id.in_(self._agreement_ids(connection, domain)),
                        UploadRow.status == "stored",
                    )
                )
                .scalars()
                .all()
            )
            seen = set(state.meta.get_column("upload_pk").unique().to_list())
            new = [pk for pk in live if pk not in seen]
            if not new:
                return 0
            pending = self._read(connection, domain, new)
        return self._link_frame(domain, state, pending.filter(pl.col("person_id").is_null()))

    def _link_frame(self, domain: str, state: _Domain, pending: pl.DataFrame) -> int:
        """Link pending records: all of them in one ``add`` (a catch-up after downtime is one
        batch; after a live upload it is that upload)."""
        if pending.height == 0:
            return 0
        state.linker.add(pending)
        fresh = pending.select(list(_META_SCHEMA)).with_columns(
            pl.lit(None, dtype=pl.String).alias("person_id"),
            pl.lit(None, dtype=pl.String).alias("link_key"),
            pl.lit(None, dtype=pl.Int64).alias("rank_in_dataset"),
        )
        state.meta = pl.concat([state.meta, fresh])
        state.tokens = pl.concat([state.tokens, pending.select(_TOKEN_SELECT)])
        return self._write(domain, state, _relinked(state), [])

    def _write(
        self, domain: str, state: _Domain, changed: list[str], extra_old_persons: list[str]
    ) -> int:
        """Store what changed for the re-examined records, in one transaction: their
        ``record_persons`` rows whose person, link key or rank moved, and the ``persons`` rows
        whose record count moved. Returns how many record rows were written."""
        if not changed and not extra_old_persons:
            return 0
        assigned = (
            state.linker.assignments(changed)
            if changed
            else pl.DataFrame(
                schema={"record_id": pl.String, "person_id": pl.String, "link_key": pl.String}
            )
        )
        members = (
            state.meta.join(assigned, on="record_id", how="inner", suffix="_new")
            .sort("event_date", "upload_pk", "row")
            .with_columns(
                (pl.int_range(pl.len()).over("person_id_new", "dataset") + 1).alias("rank_new"),
            )
        )
        members = members.with_columns(
            first_masks(
                members, partition=["person_id_new", "dataset", "agreement_id"], rank="rank_new"
            ).alias("first_mask_new")
        )
        moved = members.filter(
            pl.col("person_id").ne_missing(pl.col("person_id_new"))
            | pl.col("link_key").ne_missing(pl.col("link_key_new"))
            | pl.col("rank_in_dataset").ne_missing(pl.col("rank_new"))
            | pl.col("first_mask").ne_missing(pl.col("first_mask_new"))
        )
        before = members.filter(pl.col("person_id").is_not_null()).group_by("person_id").len()
        after = members.group_by("person_id_new").len().rename({"person_id_new": "person_id"})
        person_changes = (
            pl.concat(
                [
                    before.with_columns(pl.lit(None, dtype=pl.UInt32).alias("new")),
                    after.rename({"len": "new"})
                    .with_columns(pl.lit(None, dtype=pl.UInt32).alias("len"))
                    .select("person_id", "len", "new"),
                ]
            )
            .group_by("person_id")
            .agg(pl.col("len").max(), pl.col("new").max())
            # persons that lost withdrawn records are rewritten whatever their count
            .filter(
                pl.col("len").ne_missing(pl.col("new"))
                | pl.col("person_id").is_in(list(extra_old_persons))
            )
        )
        still_there = set(after["person_id"].to_list())
        gone = [p for p in extra_old_persons if p not in still_there]
        rewritten = moved.filter(pl.col("person_id").is_not_null())
        new_rows = moved.select(
            "upload_pk",
            "row",
            pl.col("person_id_new").alias("person_id"),
            "dataset",
            pl.col("link_key_new")
            .replace_strict(LEVELS, default=None, return_dtype=pl.Int16)
            .alias("link_level"),
            pl.col("link_key_new").alias("link_key"),
            pl.col("rank_new").alias("rank_in_dataset"),
            "event_date",
            *(pl.col(name).cast(pl.String) for name in DIMENSIONS),
            pl.col("first_mask_new").alias("first_mask"),
        )
        touched_persons = sorted(set(person_changes["person_id"].to_list()) | set(gone))
        new_persons = person_changes.filter(pl.col("new").is_not_null())
        with self._engine.begin() as connection:
            for pk, rows in rewritten.group_by("upload_pk").agg("row").iter_rows():
                for chunk in _chunks(rows):
                    connection.execute(
                        delete(RecordPersonRow).where(
                            RecordPersonRow.upload_pk == pk, RecordPersonRow.row.in_(chunk)
                        )
                    )
            for chunk in _chunks(touched_persons):
                connection.execute(delete(PersonRow).where(PersonRow.person_id.in_(chunk)))
            new_rows = encode(connection, new_rows)  # dimension values -> their codes
            for part in new_rows.iter_slices(_READ_ROWS):  # bounded memory for big links
                insert_rows(
                    connection,
                    RecordPersonRow.__table__,  # type: ignore[arg-type]
                    part.columns,
                    list(zip(*(c.to_list() for c in part.get_columns()), strict=True)),
                )
            insert_rows(
                connection,
                PersonRow.__table__,  # type: ignore[arg-type]
                ["person_id", "linkage_domain", "key_version", "records"],
                [
                    (p, domain, self.key_version, int(n))
                    for p, n in new_persons.select("person_id", "new").iter_rows()
                ],
            )
        updated = members.select(
            "record_id",
            pl.col("person_id_new").alias("person_id"),
            pl.col("link_key_new").alias("link_key"),
            pl.col("rank_new").alias("rank_in_dataset"),
            pl.col("first_mask_new").alias("first_mask"),
        )
        # link_key may become null (a record alone again): update() would keep the old value
        rest = state.meta.join(updated.select("record_id"), on="record_id", how="anti")
        state.meta = pl.concat(
            [rest, state.meta.select(_META_SCHEMA_KEYS).join(updated, on="record_id")]
        )
        return moved.height


def linkage_counts(connection: Connection, agreement_id: str) -> dict[str, dict[str, int]]:
    """Per dataset of an agreement: records linked at each cascade level (``level_1`` ...),
    ``unlinked`` (a person of one record) and ``pending`` (not yet linked). Counts only."""
    rows = connection.execute(
        select(
            RecordRow.dataset,
            RecordPersonRow.link_level,
            RecordPersonRow.person_id.is_(None),
            func.count(),
        )
        .join(UploadRow, UploadRow.id == RecordRow.upload_pk)
        .outerjoin(
            RecordPersonRow,
            and_(
                RecordPersonRow.upload_pk == RecordRow.upload_pk,
                RecordPersonRow.row == RecordRow.row,
            ),
        )
        .where(UploadRow.agreement_id == agreement_id, UploadRow.status == "stored")
        .group_by(
            RecordRow.dataset, RecordPersonRow.link_level, RecordPersonRow.person_id.is_(None)
        )
    ).all()
    out: dict[str, dict[str, int]] = {}
    for dataset, level, pending, count in rows:
        counts = out.setdefault(dataset, {})
        name = "pending" if pending else ("unlinked" if level is None else f"level_{level}")
        counts[name] = counts.get(name, 0) + int(count)
    return out
