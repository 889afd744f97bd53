"""Checkpoints are signed at intervals, not only on demand, and only when the log grew."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.api.app import create_app
from hub.audit import SYSTEM, append_event
from hub.audit.ledger import checkpoints
from hub.services import Hub


def checkpoint_sizes(hub: Hub) -> list[int]:
    with hub.engine.connect() as connection:
        return list(
            connection.execute(select(checkpoints.c.size).order_by(checkpoints.c.size)).scalars()
        )


def test_the_running_app_signs_checkpoints_at_intervals(hub: Hub) -> None:
    hub.settings.audit_checkpoint_interval_seconds = 0.2
    with TestClient(create_app(hub=hub)):
        deadline = time.monotonic() + 10
        while not checkpoint_sizes(hub) and time.monotonic() < deadline:
            time.sleep(0.05)
        first = checkpoint_sizes(hub)
        assert first, "no checkpoint was signed within 10 s"
        time.sleep(0.6)
        assert checkpoint_sizes(hub) == first, "an unchanged log needs no new checkpoint"
        with hub.engine.begin() as connection:
            append_event(connection, SYSTEM.event("test.event", "grow the log"))
        deadline = time.monotonic() + 10
        while len(checkpoint_sizes(hub)) == len(first) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpoint_sizes(hub)[-1] > first[-1]
    with hub.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(checkpoints)).scalar_one() >= 2
