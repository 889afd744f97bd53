"""Shared fixtures: a real database per test (SQLite file, or PostgreSQL when
``HUB_DATABASE_URL`` points at one), a hub with the signed example agreements, and helpers to
run the hub as a real uvicorn process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from hub.services import Hub, build_hub
from hub.settings import Settings

TEST_MASTER_SECRET = "5a" * 32
POSTGRES_URL = os.environ.get("HUB_DATABASE_URL", "")


def _reset_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    if POSTGRES_URL.startswith("postgresql"):
        _reset_postgres(POSTGRES_URL)
        return POSTGRES_URL
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        master_secret=TEST_MASTER_SECRET,
    )


@pytest.fixture
def hub(settings: Settings) -> Iterator[Hub]:
    from hub.demo import register_examples

    instance = build_hub(settings)
    register_examples(instance, settings.data_dir / "signing-keys")
    yield instance
    instance.engine.dispose()


def python_output(script: str) -> str:
    """What ``script`` prints, run in a fresh interpreter (to see what a new process imports)."""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HubProcess:
    """``hub serve`` in a subprocess, for tests that need a real server (or to kill one)."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._env = {
            **os.environ,
            "HUB_DATA_DIR": str(settings.data_dir),
            "HUB_DATABASE_URL": settings.resolved_database_url,
            "HUB_MASTER_SECRET": TEST_MASTER_SECRET,
            "HUB_MAX_UPLOAD_BYTES": str(settings.max_upload_bytes),
            "HUB_LINKAGE_IN_API": str(settings.linkage_in_api).lower(),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--port", str(self.port)],
            env=self._env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("hub exited at start:\n" + self.log_path.read_text())
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("hub did not start:\n" + self.log_path.read_text())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def hub_process(hub: Hub, tmp_path: Path) -> Iterator[HubProcess]:
    server = HubProcess(hub.settings, tmp_path / "hub-server.log")
    server.start()
    yield server
    server.stop()


# Identity ----------------------------------------------------------------------------------
class Tokens:
    """Mint real hub access tokens for a role and organisation (a real client row each).

    Tokens are signed with the hub's own token key from its data dir, so the app under test
    (in process or as a uvicorn process on the same data dir) accepts them as its own.
    """

    def __init__(self, hub: Hub) -> None:
        from hub.auth.clients import ClientStore
        from hub.auth.tokens import TokenIssuer

        self.hub = hub
        self.store = ClientStore(hub.engine)
        self.issuer = TokenIssuer(
            hub.settings.token_signing_key_file,
            issuer=hub.settings.issuer,
            audience=hub.settings.token_audience,
            lifetime=hub.settings.token_lifetime_seconds,
        )
        self._clients: dict[tuple[str, str], str] = {}

    def client_id(self, role: str, organisation: str) -> str:
        key = (role, organisation)
        if key not in self._clients:
            client, _secret = self.store.create(organisation=organisation, role=role)
            self._clients[key] = client.client_id
        return self._clients[key]

    def token(self, role: str, organisation: str, scopes: list[str] | None = None) -> str:
        from policies import scopes_for_role

        return self.issuer.mint(
            client_id=self.client_id(role, organisation),
            role=role,
            organisation=organisation,
            scopes=sorted(scopes_for_role(role)) if scopes is None else scopes,
        )

    def headers(self, role: str, organisation: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, organisation)}"}


@pytest.fixture
def tokens(hub: Hub) -> Tokens:
    return Tokens(hub)


class AgencyAuth(httpx.Auth):
    """Sends each request as the data officer of the agency that provides its dataset, or
    as ``role`` of ``organisation`` for anything else: what each agency's own job would do."""

    def __init__(
        self, tokens: Tokens, role: str = "data_officer", organisation: str = "met-police"
    ):
        self.tokens = tokens
        self.role = role
        self.organisation = organisation

    def _provider(self, path: str) -> str | None:
        from sqlalchemy import select

        from hub.models import UploadRow

        parts = path.strip("/").split("/")
        agreement_id = dataset = None
        if len(parts) == 6 and parts[:2] == ["v1", "agreements"] and parts[3] == "datasets":
            agreement_id, dataset = parts[2], parts[4]
        elif len(parts) >= 3 and parts[:2] == ["v1", "uploads"]:
            with self.tokens.hub.engine.connect() as connection:
                row = connection.execute(
                    select(UploadRow.agreement_id, UploadRow.dataset).where(
                        UploadRow.upload_id == parts[2]
                    )
                ).first()
            if row is not None:
                agreement_id, dataset = row.agreement_id, row.dataset
        if agreement_id is None:
            return None
        try:
            providers = self.tokens.hub.agreements.get(agreement_id).providers_of(str(dataset))
        except Exception:
            return None
        return providers[0].id if providers else None

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        if "authorization" in request.headers:  # the test chose who is asking
            yield request
            return
        provider = self._provider(request.url.path)
        if provider is not None and self.role == "data_officer":
            request.headers["Authorization"] = (
                f"Bearer {self.tokens.token('data_officer', provider)}"
            )
        else:
            token = self.tokens.token(self.role, self.organisation)
            request.headers["Authorization"] = f"Bearer {token}"
        yield request
