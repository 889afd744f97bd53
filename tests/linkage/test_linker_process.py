"""`hub linker` as a process of its own: with HUB_LINKAGE_IN_API=false the API only stores,
and the linker links what was stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select

from hub.demo import register_examples
from hub.models import RecordPersonRow, RecordRow
from hub.services import build_hub
from hub.settings import Settings
from synth import generate
from tests.conftest import TEST_MASTER_SECRET


def test_a_separate_linker_process_links_what_the_api_stored(
    settings: Settings, tmp_path: Path
) -> None:
    api_settings = settings.model_copy(update={"linkage_in_api": False})
    hub = build_hub(api_settings)
    register_examples(hub, api_settings.data_dir / "signing-keys")
    summary = generate(tmp_path / "extracts", scale=0.02, seed=5)
    agreement = hub.agreements.get("london-vru-partnership")
    for dataset, path in summary.files.items():
        with path.open("rb") as handle:
            hub.ingestor.ingest(handle, filename=path.name, agreement=agreement, dataset=dataset)
    with hub.engine.connect() as connection:
        assert (
            connection.execute(select(func.count()).select_from(RecordPersonRow)).scalar_one() == 0
        )
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(api_settings.data_dir),
        "HUB_DATABASE_URL": api_settings.resolved_database_url,
        "HUB_MASTER_SECRET": TEST_MASTER_SECRET,
    }
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "linker", "--once"],
        env=env,
        capture_output=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    with hub.engine.connect() as connection:
        linked = connection.execute(select(func.count()).select_from(RecordPersonRow)).scalar_one()
        stored = connection.execute(select(func.count()).select_from(RecordRow)).scalar_one()
    assert linked == stored > 0
    hub.engine.dispose()
