"""The registry of OAuth clients: create, revoke, list; every change audited in its transaction."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from hub.audit import AuditEvent, append_event
from hub.auth.models import ClientRow
from hub.auth.secrets import hash_secret, new_secret
from hub.errors import BadRequest, NotFound, Unprocessable, refuse_identifiers
from policies import ROLES

_ORGANISATION = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class Client:
    client_id: str
    organisation: str
    role: str
    description: str | None
    secret_hash: str | None
    public_jwk: dict[str, Any] | None
    created_at: datetime
    revoked_at: datetime | None

    def public_view(self) -> dict[str, Any]:
        """What may be shown about a client: never its secret or its hash."""
        return {
            "client_id": self.client_id,
            "organisation": self.organisation,
            "role": self.role,
            "description": self.description,
            "auth_methods": self.auth_methods,
            "created_at": self.created_at.isoformat(timespec="seconds"),
            "revoked_at": self.revoked_at.isoformat(timespec="seconds")
            if self.revoked_at
            else None,
        }

    @property
    def auth_methods(self) -> list[str]:
        methods = []
        if self.secret_hash:
            methods += ["client_secret_basic", "client_secret_post"]
        if self.public_jwk:
            methods.append("private_key_jwt")
        return methods


@dataclass(frozen=True)
class Actor:
    """Who changes the client registry, for the audit trail."""

    id: str
    organisation: str | None = None
    role: str | None = None
    request_id: str | None = None


OPERATOR = Actor(id="operator (hub CLI on the hub host)", role="operator")


def _client(row: Any) -> Client:
    return Client(
        client_id=row.client_id,
        organisation=row.organisation,
        role=row.role,
        description=row.description,
        secret_hash=row.secret_hash,
        public_jwk=row.public_jwk,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class ClientStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        *,
        organisation: str,
        role: str,
        actor: Actor = OPERATOR,
        description: str | None = None,
        public_jwk: dict[str, Any] | None = None,
        with_secret: bool = True,
    ) -> tuple[Client, str | None]:
        """Create a client; return it and its secret, which is shown this once only."""
        try:
            _check_new_client(organisation, role, public_jwk, with_secret)
            refuse_identifiers(description, "client description")
        except (BadRequest, Unprocessable) as refused:
            with self._engine.begin() as connection:
                _audit(connection, actor, "client.create", None, refused.message, "deny")
            raise
        secret = new_secret() if with_secret else None
        client_id = f"{organisation}.{role}.{secrets.token_hex(4)}"
        now = datetime.now(UTC)
        with self._engine.begin() as connection:
            connection.execute(
                insert(ClientRow).values(
                    client_id=client_id,
                    secret_hash=hash_secret(secret) if secret else None,
                    organisation=organisation,
                    role=role,
                    description=description,
                    public_jwk=public_jwk,
                    created_at=now,
                )
            )
            _audit(
                connection, actor, "client.create", client_id, f"created {role} of {organisation}"
            )
            row = connection.execute(
                select(ClientRow.__table__).where(ClientRow.client_id == client_id)
            ).one()
        return _client(row), secret

    def revoke(self, client_id: str, *, actor: Actor = OPERATOR) -> Client:
        with self._engine.begin() as connection:
            row = connection.execute(
                select(ClientRow.__table__).where(ClientRow.client_id == client_id)
            ).first()
            if row is None:
                _audit(connection, actor, "client.revoke", client_id, "no such client", "deny")
            elif row.revoked_at is None:
                connection.execute(
                    update(ClientRow)
                    .where(ClientRow.client_id == client_id)
                    .values(revoked_at=datetime.now(UTC))
                )
                _audit(connection, actor, "client.revoke", client_id, "revoked")
            else:
                _audit(connection, actor, "client.revoke", client_id, "already revoked")
        if row is None:
            raise NotFound(
                "client_not_found", f"There is no client {client_id!r}; see `hub clients list`."
            )
        found = self.get(client_id)
        assert found is not None
        return found

    def list(self, *, actor: Actor = OPERATOR) -> list[Client]:
        with self._engine.begin() as connection:
            rows = connection.execute(
                select(ClientRow.__table__).order_by(ClientRow.created_at, ClientRow.client_id)
            ).all()
            _audit(connection, actor, "client.list", None, f"listed {len(rows)} clients")
        return [_client(row) for row in rows]

    def get(self, client_id: str) -> Client | None:
        with self._engine.connect() as connection:
            row = connection.execute(
                select(ClientRow.__table__).where(ClientRow.client_id == client_id)
            ).first()
        return _client(row) if row is not None else None


def _check_new_client(
    organisation: str, role: str, public_jwk: dict[str, Any] | None, with_secret: bool
) -> None:
    if role not in ROLES:
        raise BadRequest(
            "unknown_role", f"Role {role!r} is not one of: {', '.join(ROLES)}. Pick one."
        )
    if not _ORGANISATION.match(organisation):
        raise BadRequest(
            "invalid_organisation",
            "An organisation id is 2-63 lower-case letters, digits or hyphens, as in the "
            "agreements' party ids (or 'partnership' for a partnership-wide IG lead).",
        )
    if public_jwk is not None:
        _check_public_jwk(public_jwk)
    if not with_secret and public_jwk is None:
        raise BadRequest(
            "no_credential",
            "A client needs a secret or a public key (for private_key_jwt); give one.",
        )


def is_live(connection: Connection, client_id: str) -> bool:
    """True when the client exists and is not revoked: one primary-key lookup."""
    revoked = connection.execute(
        select(ClientRow.client_id, ClientRow.revoked_at).where(ClientRow.client_id == client_id)
    ).first()
    return revoked is not None and revoked.revoked_at is None


def _check_public_jwk(jwk: dict[str, Any]) -> None:
    from joserfc.jwk import import_key

    if any(name in jwk for name in ("d", "p", "q", "k")):
        raise BadRequest(
            "private_key_given",
            "That JWK holds private key material. Give only the public key; keep the private "
            "key with the client.",
        )
    try:
        import_key(jwk)
    except Exception:
        raise BadRequest(
            "invalid_jwk", "The public key is not a valid JWK (RSA, EC or OKP public key)."
        ) from None


def _audit(
    connection: Connection,
    actor: Actor,
    action: str,
    client_id: str | None,
    reason: str,
    decision: str = "allow",
) -> None:
    append_event(
        connection,
        AuditEvent(
            action=action,
            decision=decision,
            reason=reason,
            actor=actor.id,
            organisation=actor.organisation,
            role=actor.role,
            resource=f"clients/{client_id}" if client_id else "clients",
            request_id=actor.request_id,
        ),
    )
