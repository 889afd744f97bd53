"""Proof of promise 1: after uploading the synthetic extracts of all six agencies through a real
hub process, no identifier value from those extracts is found in any table, in the hub's log, or
(on SQLite) anywhere in the raw bytes of the database files."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import MetaData, select

from adapters.schema import load_schemas
from hub.client import HubClient
from hub.services import Hub
from synth import generate
from tests.conftest import HubProcess
from tests.hub.helpers import AGREEMENT

# Shorter values (two- and three-letter forenames) are too likely to occur by chance in binary
# digests and JSON keys to be a meaningful search; every longer value is searched.
MIN_SEARCHED_LENGTH = 4
LINKAGE_QUASI_IDENTIFIERS = {"date_of_birth", "home_postcode", "postcode_of_usual_address"}


def identifier_values(extracts: dict[str, Path]) -> set[str]:
    """Every direct identifier, date of birth and postcode in the extracts, minus any value that
    also occurs legitimately in a column the hub keeps (a DOB equal to some referral date)."""
    schemas = load_schemas()
    identifiers: set[str] = set()
    kept: set[str] = set()
    for dataset, path in extracts.items():
        schema = schemas[dataset]
        secret = {
            f.name
            for f in schema.fields
            if f.identifier_class == "direct_identifier" or f.name in LINKAGE_QUASI_IDENTIFIERS
        }
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for name, value in row.items():
                    if not value:
                        continue
                    (identifiers if name in secret else kept).add(value)
    return {v for v in identifiers - kept if len(v) >= MIN_SEARCHED_LENGTH}


def table_dump(hub: Hub) -> str:
    metadata = MetaData()
    metadata.reflect(hub.engine)
    parts: list[str] = []
    with hub.engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                for cell in row:
                    if isinstance(cell, bytes):
                        parts.append(cell.decode("latin-1"))
                    else:
                        parts.append(str(cell))
    return "\n".join(parts)


def test_no_identifier_is_stored_logged_or_returned(
    hub: Hub, hub_process: HubProcess, tmp_path: Path
) -> None:
    summary = generate(tmp_path / "extracts", scale=0.05, seed=7)
    responses: list[str] = []
    with HubClient(hub_process.url) as client:
        for dataset, path in summary.files.items():
            receipt = client.upload(path, agreement_id=AGREEMENT, dataset=dataset)
            assert receipt["rows_accepted"] > 0, (dataset, receipt["issue_counts"])
            responses.append(str(receipt))
            responses.append(str(client.list_uploads(AGREEMENT, dataset)))
    hub_process.stop()

    values = identifier_values(summary.files)
    assert len(values) > 1000, "the search must cover a real set of identifiers"
    haystacks = {
        "tables": table_dump(hub),
        "hub log": hub_process.log_text(),
        "API responses": "\n".join(responses),
    }
    if hub.engine.dialect.name == "sqlite":
        hub.engine.dispose()
        db_path = Path(hub.settings.resolved_database_url.removeprefix("sqlite:///"))
        raw = b"".join(
            p.read_bytes() for p in db_path.parent.glob(db_path.name + "*") if p.is_file()
        )
        haystacks["raw SQLite bytes"] = raw.decode("latin-1")
    assert len(haystacks["tables"]) > 10_000, "the tables should hold the uploaded records"

    for where, haystack in haystacks.items():
        found = sorted(v for v in values if v in haystack)
        assert not found, f"{len(found)} identifier values found in the {where}"
