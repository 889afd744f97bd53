"""Fixtures for queries: the demo data (synthetic extracts, ingested and linked through the
hub's own services) and an analyst of the London partnership's recipient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.api.app import create_app
from hub.demo import DEMO_MONTHS, DEMO_START
from hub.models import UploadRow
from hub.services import Hub
from tests.conftest import Tokens

AGREEMENT = "london-vru-partnership"
POLICE = "police_violence_offences"
PURPOSE = "serious-violence-needs-assessment"
RECIPIENT = "mopac-vru"


def load_demo(hub: Hub, directory: Path, scale: float = 0.02) -> None:
    from synth import generate

    summary = generate(directory, scale=scale, seed=2026, start=DEMO_START, months=DEMO_MONTHS)
    agreement = hub.agreements.get(AGREEMENT)
    for dataset, path in summary.files.items():
        with path.open("rb") as handle:
            receipt = hub.ingestor.ingest(
                handle, filename=path.name, agreement=agreement, dataset=dataset
            )
        hub.linkage.link_upload(receipt["upload_id"])


def withdraw_dataset(hub: Hub, dataset: str) -> None:
    """Withdraw the demo upload of ``dataset`` and re-link the persons it touched."""
    with hub.engine.connect() as connection:
        upload_id = connection.execute(
            select(UploadRow.upload_id).where(UploadRow.dataset == dataset)
        ).scalar_one()
    hub.ingestor.withdraw(upload_id)
    hub.linkage.after_withdrawal(upload_id)


@pytest.fixture
def demo_hub(hub: Hub, tmp_path: Path) -> Hub:
    load_demo(hub, tmp_path / "extracts")
    return hub


@pytest.fixture
def api(demo_hub: Hub) -> Iterator[TestClient]:
    with TestClient(create_app(hub=demo_hub), base_url="https://testserver") as client:
        yield client


@pytest.fixture
def analyst(tokens: Tokens) -> dict[str, str]:
    return tokens.headers("analyst", RECIPIENT)


def body(**changes: Any) -> dict[str, Any]:
    query: dict[str, Any] = {
        "purpose": PURPOSE,
        "agreement_id": AGREEMENT,
        "dataset": POLICE,
        "measure": "count_persons",
        "group_by": ["borough", "month"],
        "epsilon": 0.5,
    }
    query.update(changes)
    return {k: v for k, v in query.items() if v is not None}
