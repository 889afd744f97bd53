"""The same query sent 50 times at once through two hub processes on one database: exactly one
spend and one release; every caller gets the same release."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
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
    with hub.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(ReleaseRow)).scalar_one() == 1
        spent = connection.execute(select(BudgetSpendRow.epsilon)).scalars().all()
        assert spent == [0.4]
        events = connection.execute(
            select(func.count()).where(AuditEventRow.action == "query.release")
        ).scalar_one()
        assert events == 1
