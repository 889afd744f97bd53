"""The same query sent 50 times at once through two hub processes on one database: exactly one
release and its spend, plus the one rows-per-person histogram its bound was chosen from; every
caller gets the same release."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from hub.models import AuditEventRow, BudgetSpendRow, ReleaseRow
from hub.services import Hub
from tests.conftest import HubProcess, Tokens
from tests.queries.conftest import RECIPIENT, body, load_demo


def test_fifty_identical_queries_from_two_processes_spend_once(
    hub: Hub, tokens: Tokens, tmp_path: Path
) -> None:
    load_demo(hub, tmp_path / "extracts")
    servers = [HubProcess(hub.settings, tmp_path / f"hub-{i}.log") for i in range(2)]
    for server in servers:
        server.start()
    try:
        headers = tokens.headers("analyst", RECIPIENT)
        query = body(group_by=["borough"], epsilon=0.4)

        def ask(i: int) -> httpx.Response:
            url = servers[i % 2].url + "/v1/queries"
            return httpx.post(url, json=query, headers=headers, timeout=120)

        with ThreadPoolExecutor(max_workers=25) as pool:
            responses = list(pool.map(ask, range(50)))
    finally:
        for server in servers:
            server.stop()
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
    releases = {r.json()["release_id"] for r in responses}
    assert len(releases) == 1
    assert sum(not r.json()["repeated"] for r in responses) == 1
    histogram_id = responses[0].json()["contribution_bound"]["histogram_release_id"]
    with hub.engine.connect() as connection:
        stored = set(connection.execute(select(ReleaseRow.release_id)).scalars())
        assert stored == releases | {histogram_id}  # one release, one histogram
        spent = connection.execute(select(BudgetSpendRow.release_id, BudgetSpendRow.epsilon)).all()
        histogram_epsilon = 0.02 * 0.5  # BOUND_SHARE of the agreement's per-query cap
        assert sorted(spent, key=lambda s: s[1]) == [
            (histogram_id, pytest.approx(histogram_epsilon)),
            (releases.pop(), 0.4),
        ]
        events = connection.execute(
            select(func.count()).where(AuditEventRow.action == "query.release")
        ).scalar_one()
        assert events == 2
