"""The clients table: machine clients of the embedded authorization server."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.models import Base, JSONDocument


class ClientRow(Base):
    """One OAuth client: an organisation and a role. The secret is kept only as a scrypt hash."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    organisation: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(String(200), nullable=True)
    public_jwk: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
