"""Migration 0007 rebuilds record_persons with the query facts: links stored before it are
kept (same person ids), and the linkage service fills in their facts when it starts."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import select

from hub.db import alembic_config, make_engine
from hub.models import RecordPersonRow
from hub.services import Hub, build_hub
from tests.queries.conftest import load_demo


def test_links_stored_before_the_facts_survive_the_upgrade_and_get_their_facts(
    hub: Hub, tmp_path: Path
) -> None:
    load_demo(hub, tmp_path / "extracts", scale=0.01)
    url = hub.settings.resolved_database_url
    columns = (RecordPersonRow.upload_pk, RecordPersonRow.row, RecordPersonRow.person_id)
    with hub.engine.connect() as connection:
        before = sorted(connection.execute(select(*columns)).all())
    assert before
    hub.engine.dispose()
    command.downgrade(alembic_config(url), "0006")
    command.upgrade(alembic_config(url), "heads")
    engine = make_engine(url)
    with engine.connect() as connection:
        assert sorted(connection.execute(select(*columns)).all()) == before
        assert connection.execute(
            select(RecordPersonRow.row).where(RecordPersonRow.first_mask.is_not(None))
        ).all() == []
    engine.dispose()
    restarted = build_hub(hub.settings)  # links at start: fills in the facts
    restarted.linkage.catch_up()
    with restarted.engine.connect() as connection:
        rows = connection.execute(
            select(*columns, RecordPersonRow.first_mask, RecordPersonRow.month)
        ).all()
    assert sorted((u, r, p) for u, r, p, _, _ in rows) == before
    assert all(mask is not None and month is not None for *_, mask, month in rows)
    restarted.engine.dispose()
