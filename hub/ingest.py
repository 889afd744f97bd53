"""Ingest one extract: read → validate → pseudonymise → store, as one transaction.

The flow is one way. Raw identifiers exist only inside a batch's polars frame between the
adapter and the pseudonymiser; what reaches the database is the record frame built by
``hub.records`` (generalised quasi-identifiers and attributes) and the match-key digests.

All-or-nothing: every row of an upload is written inside one database transaction that is
committed only after the last batch, so a crash at any point leaves nothing behind.
Idempotent: the same file (same SHA-256) for the same agreement and dataset returns the
receipt of the first upload and adds no rows.
"""

from __future__ import annotations

import gc
import io
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

import polars as pl
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from adapters import get_adapter
from adapters.base import Adapter, RowIssue
from adapters.readers import ReadError, open_table
from agreements import Agreement, DatasetTerms
from hub.audit import SYSTEM, Actor, append_event
from hub.bulk import insert_frame
from hub.db import large_write
from hub.errors import NotFound, Unprocessable, refuse_identifiers
from hub.keyring import KeyRing
from hub.models import RecordAnchorBatchRow, RecordAttributeBatchRow, RecordRow, UploadRow
from hub.pipeline import ThreadStage
from hub.records import KeptBatch, batch_blob, build_records, clk_blob
from hub.signing import HubSigner
from hub.streams import HashingReader, needs_random_access
from privacy.linkage.anchors import ANCHOR_FIELDS, AnchorEncoder
from privacy.matchkeys import Pseudonymiser, pack_match_keys

log = logging.getLogger("hub.ingest")

ProgressCallback = Callable[[int], None]


@dataclass(frozen=True)
class _KeyedBatch:
    """One batch as the writer takes it: what is kept, the match keys (digest prefixes), the
    keyed anchors (``privacy.linkage.anchors``), and the forename, surname and birth year
    normalised as the match keys normalised them, from which the writer makes the hardened
    name CLKs (``privacy.linkage.bloom``) before anything is stored."""

    kept: KeptBatch
    key_prefixes: pl.DataFrame
    anchors: pl.DataFrame
    names: pl.DataFrame


@dataclass
class _Tally:
    rows_read: int = 0
    rows_accepted: int = 0
    issues: list[RowIssue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    rejected_rows: set[int] = field(default_factory=set)

    def add(self, issues: list[RowIssue], limit: int) -> None:
        for issue in issues:
            self.counts[f"{issue.severity}:{issue.code}"] += 1
            if issue.severity == "error":
                self.rejected_rows.add(issue.row)
            if len(self.issues) < limit:
                self.issues.append(issue)


_gc_lock = threading.Lock()
_gc_pauses = 0


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while an upload runs.

    Ingest allocates millions of short-lived tuples, none of them in reference cycles; the
    collector would otherwise walk them again and again (several percent of ingest time).
    Reference counting still frees everything; nested or concurrent uploads share the pause.
    """
    global _gc_pauses
    with _gc_lock:
        _gc_pauses += 1
        gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0:
                gc.enable()


class Ingestor:
    """Turns an extract stream into stored records under one agreement's dataset terms."""

    def __init__(
        self,
        engine: Engine,
        keyring: KeyRing,
        signer: HubSigner,
        *,
        max_upload_bytes: int,
        max_report_issues: int,
        batch_rows: int,
        name_clks: bool = True,
    ) -> None:
        self._engine = engine
        self._name_clks = name_clks
        self._keyring = keyring
        self._signer = signer
        self._max_upload_bytes = max_upload_bytes
        self._max_report_issues = max_report_issues
        self._batch_rows = batch_rows

    def ingest(
        self,
        source: BinaryIO,
        *,
        filename: str,
        agreement: Agreement,
        dataset: str,
        progress: ProgressCallback | None = None,
        actor: Actor = SYSTEM,
    ) -> dict[str, Any]:
        """Store one extract under ``agreement``; return its signed receipt (see module doc).

        The rows, the receipt and the ``upload.stored`` audit event are one transaction.
        """
        with cyclic_gc_paused():
            return self._ingest(source, filename, agreement, dataset, progress, actor)

    def _ingest(
        self,
        source: BinaryIO,
        filename: str,
        agreement: Agreement,
        dataset: str,
        progress: ProgressCallback | None,
        actor: Actor,
    ) -> dict[str, Any]:
        terms = agreement.dataset(dataset)
        adapter = get_adapter(dataset)
        pseudonymiser = self._keyring.pseudonymiser(agreement.linkage_domain)
        anchor_encoder = self._keyring.anchor_encoder(agreement.linkage_domain)
        bloom_encoder = self._keyring.bloom_encoder(agreement.linkage_domain)
        reader = HashingReader(source, self._max_upload_bytes)
        stream: BinaryIO = io.BufferedReader(reader, buffer_size=1 << 20)
        if needs_random_access(filename):
            stream = io.BytesIO(stream.read())
        try:
            table = open_table(stream, filename, batch_rows=self._batch_rows)
        except ReadError as error:
            raise Unprocessable(error.code, error.message) from None
        permitted = [term.name for term in terms.fields]
        problems = adapter.check_columns(table.columns, permitted)
        if problems:
            raise Unprocessable(
                "columns_rejected",
                "The file's columns do not match the agreement: "
                + "; ".join(problem.message for problem in problems),
                details=[
                    {"column": p.column, "code": p.code, "message": p.message} for p in problems
                ],
            )

        upload_id = f"upl_{uuid.uuid4().hex}"
        tally = _Tally()
        try:
            with large_write(self._engine) as connection:
                upload_pk = self._open_upload(connection, upload_id, agreement, dataset)
                table_rows = RecordRow.__table__

                constants = {
                    "upload_pk": upload_pk,
                    "dataset": adapter.dataset,
                    "key_version": pseudonymiser.key_version,
                }

                def store(batch: _KeyedBatch) -> None:
                    names = batch.names
                    clks = (
                        clk_blob(
                            *bloom_encoder.name_clk_rows(names["fore"], names["sur"], names["year"])
                        )
                        if self._name_clks
                        else None  # HUB_INGEST_NAME_CLKS=false: compared with no one
                    )
                    rows = batch.kept.records.get_column("row")
                    records = pl.concat(
                        [batch.kept.records.drop("dataset"), pack_match_keys(batch.key_prefixes)],
                        how="horizontal",
                    )
                    insert_frame(connection, table_rows, records, constants=constants)  # type: ignore[arg-type]
                    anchors = pl.concat([rows.to_frame(), batch.anchors], how="horizontal")
                    where = {"upload_pk": upload_pk, "first_row": int(rows[0])}
                    connection.execute(
                        insert(RecordAttributeBatchRow).values(
                            **where, rows=records.height, body=batch_blob(batch.kept.attributes)
                        )
                    )
                    connection.execute(
                        insert(RecordAnchorBatchRow).values(
                            **where,
                            rows=records.height,
                            body=batch_blob(anchors, compression="lz4"),
                            clks=clks,
                        )
                    )

                # Three threads, each with about a third of the work: this one reads and
                # validates; the keyer hashes the match keys and anchors and generalises; the
                # writer makes the name CLKs, packs, compresses and inserts.
                # One batch queued per stage: deeper queues hold more batches in memory
                # (several MB each) without keeping the two cores any busier.
                writer: ThreadStage[_KeyedBatch] = ThreadStage(store, name="hub-store", depth=1)

                def key(canonical: pl.DataFrame) -> None:
                    writer.submit(
                        self._keyed(adapter, terms, pseudonymiser, anchor_encoder, canonical)
                    )

                keyer: ThreadStage[pl.DataFrame] = ThreadStage(key, name="hub-key", depth=1)
                first_row = 2  # the header is spreadsheet row 1
                try:
                    for batch in table.batches:
                        canonical = adapter.map_batch(batch, first_row)
                        first_row += batch.height
                        tally.rows_read += batch.height
                        tally.add(canonical.issues, self._max_report_issues)
                        if canonical.frame.height:
                            tally.rows_accepted += canonical.frame.height
                            keyer.submit(canonical.frame)
                        # neither is held while the next batch is read: the keyer has it
                        del batch, canonical
                        if progress is not None:
                            progress(tally.rows_read)
                        log.info("upload %s: %d rows processed", upload_id, tally.rows_read)
                    reader.drain()
                except ReadError as error:
                    raise Unprocessable(error.code, error.message) from None
                finally:
                    # Stop both stages before the transaction ends, whatever happened.
                    try:
                        keyer.close()
                    finally:
                        writer.close()
                existing = self._live_upload(connection, agreement.id, dataset, reader.sha256)
                if existing is not None:
                    raise _AlreadyUploaded(existing)
                if tally.rows_accepted == 0:
                    raise Unprocessable(
                        "no_valid_rows",
                        f"None of the {tally.rows_read:,} rows passed validation, so nothing "
                        "was stored. Fix the errors listed and upload the file again.",
                        details=self._report(tally),
                    )
                receipt = self._receipt(upload_id, agreement, dataset, reader, tally)
                connection.execute(
                    update(UploadRow)
                    .where(UploadRow.id == upload_pk)
                    .values(
                        sha256=reader.sha256,
                        size_bytes=reader.size,
                        rows_read=tally.rows_read,
                        rows_accepted=tally.rows_accepted,
                        rows_rejected=tally.rows_read - tally.rows_accepted,
                        status="stored",
                        live=1,
                        receipt=receipt,
                    )
                )
                append_event(
                    connection,
                    actor.event(
                        "upload.stored",
                        f"{upload_id}: {tally.rows_read:,} rows read, "
                        f"{tally.rows_accepted:,} stored (sha256 {reader.sha256[:16]})",
                        resource=f"agreements/{agreement.id}/datasets/{dataset}",
                        agreement_id=agreement.id,
                    ),
                )
        except _AlreadyUploaded as duplicate:
            return duplicate.receipt
        except IntegrityError:
            # A concurrent upload of the same file committed first: return its receipt.
            with self._engine.connect() as connection:
                found = self._live_upload(connection, agreement.id, dataset, reader.sha256)
            if found is None:
                raise
            return found
        log.info(
            "upload %s stored: %d rows read, %d accepted",
            upload_id,
            tally.rows_read,
            tally.rows_accepted,
        )
        return receipt

    def _open_upload(
        self, connection: Connection, upload_id: str, agreement: Agreement, dataset: str
    ) -> int:
        result = connection.execute(
            insert(UploadRow)
            .values(
                upload_id=upload_id,
                agreement_id=agreement.id,
                agreement_version=agreement.version,
                dataset=dataset,
                sha256="",
                size_bytes=0,
                rows_read=0,
                rows_accepted=0,
                rows_rejected=0,
                key_version=self._keyring.key_version,
                status="receiving",
                live=None,
                created_at=datetime.now(UTC),
                receipt={},
            )
            .returning(UploadRow.id)
        )
        return int(result.scalar_one())

    @staticmethod
    def _keyed(
        adapter: Adapter,
        terms: DatasetTerms,
        pseudonymiser: Pseudonymiser,
        anchor_encoder: AnchorEncoder,
        canonical: pl.DataFrame,
    ) -> _KeyedBatch:
        """What is kept of a canonical batch, its match keys and keyed anchors, and the
        normalised names the CLKs are made of (the anchors and the CLKs are made of fields the
        match keys normalise anyway: normalised once).

        ``canonical`` holds raw identifiers; nothing of it leaves this function but the
        digests, the anchors, the generalised values and the normalised forename, surname and
        birth year, which the writer hashes into CLKs and never stores.
        """
        keys = pseudonymiser.match_key_prefixes(canonical, adapter.dataset, fields=ANCHOR_FIELDS)
        anchors = anchor_encoder.encode(canonical, normalised=keys.select(ANCHOR_FIELDS))
        kept = build_records(canonical, terms, adapter)
        return _KeyedBatch(
            kept, keys.drop(ANCHOR_FIELDS), anchors, keys.select("fore", "sur", "year")
        )

    def _live_upload(
        self, connection: Connection, agreement_id: str, dataset: str, sha256: str
    ) -> dict[str, Any] | None:
        receipt = connection.execute(
            select(UploadRow.receipt).where(
                UploadRow.agreement_id == agreement_id,
                UploadRow.dataset == dataset,
                UploadRow.sha256 == sha256,
                UploadRow.live == 1,
            )
        ).scalar_one_or_none()
        return receipt

    def _report(self, tally: _Tally) -> dict[str, Any]:
        return {
            "errors": [
                {
                    "row": issue.row,
                    "field": issue.field,
                    "code": issue.code,
                    "severity": issue.severity,
                    "message": issue.message,
                }
                for issue in tally.issues
            ],
            "errors_truncated": sum(tally.counts.values()) > len(tally.issues),
            "issue_counts": dict(sorted(tally.counts.items())),
        }

    def _receipt(
        self,
        upload_id: str,
        agreement: Agreement,
        dataset: str,
        reader: HashingReader,
        tally: _Tally,
    ) -> dict[str, Any]:
        document = {
            "type": "upload_receipt",
            "upload_id": upload_id,
            "agreement_id": agreement.id,
            "agreement_version": agreement.version,
            "dataset": dataset,
            "sha256": reader.sha256,
            "size_bytes": reader.size,
            "rows_read": tally.rows_read,
            "rows_accepted": tally.rows_accepted,
            "rows_rejected": tally.rows_read - tally.rows_accepted,
            **self._report(tally),
            "key_version": self._keyring.key_version,
            "received_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "status": "stored",
        }
        return self._signer.sign_document(document)

    def withdraw(
        self, upload_id: str, *, reason: str | None = None, actor: Actor = SYSTEM
    ) -> dict[str, Any]:
        """Delete an upload's rows; its receipt is kept, marked withdrawn, and re-signed.

        The deletion and its ``upload.withdrawn`` audit event are one transaction.
        """
        refuse_identifiers(reason, "withdrawal reason")
        with large_write(self._engine) as connection:
            upload = connection.execute(
                select(UploadRow.id, UploadRow.status, UploadRow.receipt)
                .where(UploadRow.upload_id == upload_id)
                .with_for_update()
            ).first()
            if upload is None:
                raise NotFound(
                    "upload_not_found",
                    f"There is no upload {upload_id!r}. List uploads with `hub uploads list`.",
                )
            receipt: dict[str, Any] = dict(upload.receipt)
            if upload.status == "withdrawn":
                return receipt
            pk = upload.id
            connection.execute(delete(RecordRow).where(RecordRow.upload_pk == pk))
            for table in (RecordAttributeBatchRow, RecordAnchorBatchRow):
                connection.execute(delete(table).where(table.upload_pk == pk))
            now = datetime.now(UTC)
            body = {k: v for k, v in receipt.items() if k != "signature"}
            body.update(
                status="withdrawn",
                withdrawn_at=now.isoformat(timespec="seconds"),
                withdrawal_reason=reason,
            )
            signed = self._signer.sign_document(body)
            connection.execute(
                update(UploadRow)
                .where(UploadRow.id == pk)
                .values(status="withdrawn", live=None, withdrawn_at=now, receipt=signed)
            )
            append_event(
                connection,
                actor.event(
                    "upload.withdrawn",
                    f"{upload_id}: {receipt.get('rows_accepted', 0):,} rows deleted",
                    resource=f"uploads/{upload_id}",
                    agreement_id=receipt.get("agreement_id"),
                ),
            )
        log.info("upload %s withdrawn", upload_id)
        return signed


class _AlreadyUploaded(Exception):
    """Raised inside the transaction to roll it back when the file was already stored."""

    def __init__(self, receipt: dict[str, Any]) -> None:
        super().__init__("already uploaded")
        self.receipt = receipt
