"""Settings for one hub process, read from ``HUB_*`` environment variables.

Everything an operator may change lives here so that a deployment is described by its
environment alone. Secrets (the master secret) are *referenced* here, never stored in the
database: see ``privacy.secrets`` for how each source is read.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    data_dir: Path = Field(
        default=Path("var"), description="Where the embedded database and keys live."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default is SQLite at $HUB_DATA_DIR/hub.db.",
    )
    master_secret: str | None = Field(default=None, description="Master secret, hex or base64.")
    master_secret_file: Path | None = Field(
        default=None, description="File holding the master secret."
    )
    master_secret_command: str | None = Field(
        default=None,
        description="Command printing the master secret (how a KMS or vault is referenced).",
    )
    key_version: int = Field(default=1, ge=1, description="Version of the linkage keys in use.")
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1, description="Largest accepted upload.")
    max_report_issues: int = Field(
        default=1000, ge=0, description="Row issues listed in a receipt."
    )
    trusted_signers_file: Path | None = Field(
        default=None,
        description=(
            "JSON file of agreement signers' public keys; "
            "default $HUB_DATA_DIR/trusted-signers.json."
        ),
    )
    audit_origin: str = Field(default="vru-hub.example/audit", description="Audit log origin.")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hub.db').resolve()}"

    @property
    def signing_key_file(self) -> Path:
        return self.data_dir / "hub-signing-key.pem"

    @property
    def resolved_trusted_signers_file(self) -> Path:
        return self.trusted_signers_file or self.data_dir / "trusted-signers.json"

    @property
    def demo_master_secret_file(self) -> Path:
        return self.data_dir / "master-secret.key"
