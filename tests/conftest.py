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
