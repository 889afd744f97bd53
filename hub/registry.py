"""The agreement registry: which agreements the hub holds, and which govern today.

An agreement is registered only when it parses, fits the extract layouts the adapters read,
would never store a raw identifier, and carries valid signatures from its controllers and
providers by keys the hub trusts. Registration, suspension and lookups all go through here.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from adapters.schema import load_schemas
from agreements import (
    Agreement,
    AgreementError,
    LayoutField,
    SignatureError,
    TrustedSigners,
    canonical_bytes,
    check_against_layouts,
    parse_agreement,
    verify_signatures,
)
from hub.audit import SYSTEM, Actor, append_event
from hub.errors import Conflict, NotFound, Unprocessable, refuse_identifiers
from hub.models import AgreementRow
from hub.records import SAFE_IDENTIFIER_RULES

log = logging.getLogger("hub.agreements")

# Layout fields that feed match keys and must never be stored in raw form.
_LINKAGE_QUASI_IDENTIFIERS = {"date_of_birth", "home_postcode", "postcode_of_usual_address"}


def extract_layouts() -> dict[str, dict[str, LayoutField]]:
    return {
        name: {
            field.name: LayoutField(
                identifier_class=field.identifier_class, required=field.required
            )
            for field in schema.fields
        }
        for name, schema in load_schemas().items()
    }


class AgreementRegistry:
    def __init__(self, engine: Engine, trusted_signers_file: Path) -> None:
        self._engine = engine
        self._trusted_signers_file = trusted_signers_file

    def trusted_signers(self) -> TrustedSigners:
        if not self._trusted_signers_file.exists():
            return TrustedSigners()
        return TrustedSigners.load(self._trusted_signers_file)

    def register(
        self, data: bytes, *, source: str, format: str, actor: Actor = SYSTEM
    ) -> dict[str, Any]:
        """Validate and store one signed agreement version; the same content again is a no-op.

        The registration and its audit event are one transaction.
        """
        try:
            agreement = parse_agreement(data, source, format)  # type: ignore[arg-type]
            check_against_layouts(agreement, extract_layouts())
        except AgreementError as error:
            raise Unprocessable(
                "agreement_invalid",
                str(error),
                details={"source": error.source, "field": error.field, "reason": error.reason},
            ) from None
        _refuse_raw_identifier_storage(agreement, source)
        try:
            verify_signatures(agreement, self.trusted_signers())
        except SignatureError as error:
            raise Unprocessable("agreement_signature_invalid", f"{source}: {error}") from None

        document = agreement.model_dump(mode="json")
        # Identity is the signed content, not the signatures: the same terms signed again
        # (a new signed_at) are the same agreement version.
        digest = hashlib.sha256(canonical_bytes(agreement)).hexdigest()
        with self._engine.begin() as connection:
            existing = connection.execute(
                select(AgreementRow.document_sha256).where(
                    AgreementRow.agreement_id == agreement.id,
                    AgreementRow.version == agreement.version,
                )
            ).scalar_one_or_none()
            if existing is not None and existing != digest:
                raise Conflict(
                    "agreement_version_exists",
                    f"Agreement {agreement.id} version {agreement.version} is already registered "
                    "with different content. Agreements are immutable: raise the version number.",
                )
            newest = connection.execute(
                select(func.max(AgreementRow.version)).where(
                    AgreementRow.agreement_id == agreement.id
                )
            ).scalar_one()
            if existing is None and newest is not None and agreement.version < newest:
                raise Conflict(
                    "agreement_superseded",
                    f"Agreement {agreement.id} is already at version {newest}; version "
                    f"{agreement.version} cannot be registered after it.",
                )
            if existing is None:
                connection.execute(
                    insert(AgreementRow).values(
                        agreement_id=agreement.id,
                        version=agreement.version,
                        title=agreement.title,
                        document=document,
                        document_sha256=digest,
                        registered_at=datetime.now(UTC),
                    )
                )
                append_event(
                    connection,
                    actor.event(
                        "agreement.registered",
                        f"registered version {agreement.version} (sha256 {digest[:16]})",
                        resource=f"agreements/{agreement.id}",
                        agreement_id=agreement.id,
                    ),
                )
                log.info("agreement %s v%d registered", agreement.id, agreement.version)
        return self.summary(agreement.id)

    def _latest_row(self, agreement_id: str) -> AgreementRow:
        with self._engine.connect() as connection:
            latest = (
                select(func.max(AgreementRow.version))
                .where(AgreementRow.agreement_id == agreement_id)
                .scalar_subquery()
            )
            row = connection.execute(
                select(AgreementRow.__table__).where(
                    AgreementRow.agreement_id == agreement_id, AgreementRow.version == latest
                )
            ).first()
        if row is None:
            raise NotFound(
                "agreement_not_found",
                f"There is no agreement {agreement_id!r}. List them with `hub agreements list`.",
            )
        return row  # type: ignore[return-value]

    def get(self, agreement_id: str) -> Agreement:
        return Agreement.model_validate(self._latest_row(agreement_id).document)

    def status(self, agreement_id: str, today: date | None = None) -> str:
        row = self._latest_row(agreement_id)
        if row.suspended_at is not None:
            return "suspended"
        return Agreement.model_validate(row.document).effective_status(today or date.today())

    def summary(self, agreement_id: str) -> dict[str, Any]:
        row = self._latest_row(agreement_id)
        agreement = Agreement.model_validate(row.document)
        return {
            "id": agreement.id,
            "version": agreement.version,
            "title": agreement.title,
            "status": self.status(agreement_id),
            "document_status": agreement.status,
            "valid_from": agreement.valid_from.isoformat(),
            "valid_until": agreement.valid_until.isoformat(),
            "review_date": agreement.review_date.isoformat(),
            "linkage_domain": agreement.linkage_domain,
            "parties": [
                {"id": p.id, "name": p.name, "roles": list(p.roles)} for p in agreement.parties
            ],
            "datasets": [{"name": d.name, "provider": d.provider} for d in agreement.datasets],
            "document_sha256": row.document_sha256,
            "registered_at": row.registered_at.isoformat(),
            "suspended_at": row.suspended_at.isoformat() if row.suspended_at else None,
            "suspension_reason": row.suspension_reason,
        }

    def list(self) -> list[dict[str, Any]]:
        with self._engine.connect() as connection:
            ids = connection.execute(
                select(AgreementRow.agreement_id).distinct().order_by(AgreementRow.agreement_id)
            ).scalars()
            return [self.summary(agreement_id) for agreement_id in list(ids)]

    def suspend(self, agreement_id: str, reason: str, *, actor: Actor = SYSTEM) -> dict[str, Any]:
        refuse_identifiers(reason, "suspension reason")
        row = self._latest_row(agreement_id)
        if row.suspended_at is None:
            with self._engine.begin() as connection:
                connection.execute(
                    update(AgreementRow)
                    .where(
                        AgreementRow.agreement_id == agreement_id,
                        AgreementRow.version == row.version,
                    )
                    .values(suspended_at=datetime.now(UTC), suspension_reason=reason)
                )
                append_event(
                    connection,
                    actor.event(
                        "agreement.suspended",
                        f"suspended version {row.version}: {reason}",
                        resource=f"agreements/{agreement_id}",
                        agreement_id=agreement_id,
                    ),
                )
            log.info("agreement %s suspended", agreement_id)
        return self.summary(agreement_id)

    def active_for_upload(self, agreement_id: str, dataset: str) -> Agreement:
        """The agreement, if it is active today and covers ``dataset``; else a clear 4xx."""
        agreement = self.get(agreement_id)
        status = self.status(agreement_id)
        if status != "active":
            raise Conflict(
                "agreement_not_active",
                f"Agreement {agreement_id} is {status}: no uploads are accepted under it. "
                "Ask your information-governance lead which agreement is in force.",
            )
        if dataset not in {d.name for d in agreement.datasets}:
            raise NotFound(
                "dataset_not_in_agreement",
                f"Agreement {agreement_id} does not cover a dataset called {dataset!r}; it covers "
                + ", ".join(sorted(d.name for d in agreement.datasets))
                + ".",
            )
        return agreement


def _refuse_raw_identifier_storage(agreement: Agreement, source: str) -> None:
    for d_index, dataset in enumerate(agreement.datasets):
        for f_index, field in enumerate(dataset.fields):
            if field.name not in _LINKAGE_QUASI_IDENTIFIERS or field.generalise == "drop":
                continue
            if field.generalise not in SAFE_IDENTIFIER_RULES:
                raise Unprocessable(
                    "agreement_invalid",
                    f"{source}: datasets[{d_index}].fields[{f_index}].generalise: "
                    f"{field.name} is a linkage identifier and may only be stored as one of "
                    + ", ".join(sorted(SAFE_IDENTIFIER_RULES))
                    + ", or dropped",
                )
