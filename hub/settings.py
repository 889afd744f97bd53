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
    ingest_batch_rows: int = Field(
        default=7_168,
        ge=256,
        le=1_000_000,
        description="Rows an upload reads, validates, keys and stores at a time. The pipeline "
        "holds a few batches at once, so this sets ingest's memory (larger: a little less CPU "
        "per row, more memory).",
    )
    ingest_name_clks: bool = Field(
        default=True,
        description="Make and store each named record's hardened name CLK at ingest, for the "
        "linker's Bloom pass (misspelt names; docs/linkage.md). Off: ingest does about a third "
        "less work (and HUB_INGEST_BATCH_ROWS=12288 fits the same memory), and records link "
        "only through their match keys and anchors.",
    )
    trusted_signers_file: Path | None = Field(
        default=None,
        description=(
            "JSON file of agreement signers' public keys; "
            "default $HUB_DATA_DIR/trusted-signers.json."
        ),
    )
    # Identity: the embedded OAuth 2.0 authorization server and an optional external issuer.
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The hub's public base URL: the issuer of its access tokens.",
    )
    token_audience: str = Field(
        default="vru-hub", description="The 'aud' of hub access tokens (and of external ones)."
    )
    token_lifetime_seconds: int = Field(
        default=900, ge=30, le=86_400, description="Access-token lifetime (default 15 minutes)."
    )
    oidc_issuer: str | None = Field(
        default=None, description="External OpenID Connect issuer URL whose tokens are accepted."
    )
    oidc_audience: str | None = Field(
        default=None, description="Audience external tokens must carry; default token_audience."
    )
    oidc_jwks_url: str | None = Field(
        default=None, description="External issuer's JWKS URL; default: from its metadata."
    )
    oidc_role_claim: str = Field(
        default="roles",
        description="Dotted path of the roles claim: 'roles' (Entra), 'realm_access.roles' "
        "(Keycloak).",
    )
    oidc_organisation_claim: str = Field(
        default="organisation", description="Dotted path of the organisation claim."
    )
    oidc_role_map: dict[str, str] = Field(
        default_factory=dict,
        description="External role name -> hub role (JSON); hub role names map to themselves.",
    )
    rate_limit_per_minute: int = Field(
        default=600, ge=1, description="Requests per minute per client (token bucket refill)."
    )
    rate_limit_burst: int = Field(default=100, ge=1, description="Token bucket size per client.")
    max_request_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest request body except for uploads."
    )
    linkage_in_api: bool = Field(
        default=True,
        description=(
            "Link uploads inside the API process (after each upload, and what is pending at "
            "start). Set false and run `hub linker` as its own process to keep the API's "
            "memory and CPU to ingest and queries."
        ),
    )
    audit_origin: str = Field(default="vru-hub.example/audit", description="Audit log origin.")
    audit_checkpoint_interval_seconds: float = Field(
        default=300, description="Sign an audit checkpoint this often when the log grew; 0: off."
    )
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
    def token_signing_key_file(self) -> Path:
        return self.data_dir / "token-signing-key.pem"

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def resolved_trusted_signers_file(self) -> Path:
        return self.trusted_signers_file or self.data_dir / "trusted-signers.json"

    @property
    def demo_master_secret_file(self) -> Path:
        return self.data_dir / "master-secret.key"
