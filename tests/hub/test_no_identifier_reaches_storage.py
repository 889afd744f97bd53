"""Proof of promise 1: after uploading the synthetic extracts of all six agencies through a real
hub process, no identifier value from those extracts is found in any table, in the hub's log, or
(on SQLite) anywhere in the raw bytes of the database files."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import MetaData, select

from adapters.schema import load_schemas
from hub.client import HubClient
from hub.models import RecordAnchorBatchRow, RecordAttributeBatchRow
from hub.records import frame_from_blob
from hub.services import Hub
from synth import generate
from tests.conftest import AgencyAuth, HubProcess, Tokens
from tests.hub.helpers import AGREEMENT

# Shorter values (two- and three-letter forenames) are too likely to occur by chance in binary
# digests and JSON keys to be a meaningful search; every longer value is searched.
MIN_SEARCHED_LENGTH = 4
LINKAGE_QUASI_IDENTIFIERS = {"date_of_birth", "home_postcode", "postcode_of_usual_address"}


def identifier_values(extracts: dict[str, Path]) -> set[str]:
    """Every direct identifier, date of birth and postcode in the extracts, minus any value that
    also occurs, whole or inside a longer value, in a column the hub keeps: a DOB equal to some
    referral date, a surname "Lewis" inside the probation unit "Lewisham PDU"."""
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
    kept_text = "\n".join(kept)
    return {v for v in identifiers if len(v) >= MIN_SEARCHED_LENGTH and v not in kept_text}


def table_dumps(hub: Hub) -> dict[str, str]:
    """Every table's every cell as text (binary cells byte for byte)."""
    metadata = MetaData()
    metadata.reflect(hub.engine)
    dumps: dict[str, str] = {}
    with hub.engine.connect() as connection:
        for table in metadata.sorted_tables:
            parts = []
            for row in connection.execute(select(table)):
                for cell in row:
                    parts.append(cell.decode("latin-1") if isinstance(cell, bytes) else str(cell))
            dumps[table.name] = "\n".join(parts)
    return dumps


def decoded_attribute_batches(hub: Hub) -> str:
    """The kept attributes and the anchors, decompressed: a compressed blob would hide a
    leaked value from a byte search."""
    texts = []
    with hub.engine.connect() as connection:
        for table in (RecordAttributeBatchRow, RecordAnchorBatchRow):
            bodies = connection.execute(select(table.body)).scalars().all()
            assert bodies, f"the uploads should have stored {table.__tablename__}"
            texts.extend(frame_from_blob(body).write_ndjson() for body in bodies)
    return "\n".join(texts)


def sqlite_bytes(hub: Hub) -> str:
    db_path = Path(hub.settings.resolved_database_url.removeprefix("sqlite:///"))
    files = sorted(db_path.parent.glob(db_path.name + "*"))
    return b"".join(p.read_bytes() for p in files if p.is_file()).decode("latin-1")


def test_no_identifier_is_stored_logged_or_returned(
    hub: Hub, hub_process: HubProcess, tmp_path: Path, tokens: Tokens
) -> None:
    summary = generate(tmp_path / "extracts", scale=0.05, seed=7)
    # The registered agreements name places and parties ("St Thomas'", "Lewisham"): a value
    # already in the database before any upload cannot have come from an extract.
    before = table_dumps(hub)
    before_raw = sqlite_bytes(hub) if hub.engine.dialect.name == "sqlite" else ""
    responses: list[str] = []
    with HubClient(hub_process.url, auth=AgencyAuth(tokens)) as client:
        for dataset, path in summary.files.items():
            receipt = client.upload(path, agreement_id=AGREEMENT, dataset=dataset)
            assert receipt["rows_accepted"] > 0, (dataset, receipt["issue_counts"])
            responses.append(str(receipt))
            responses.append(str(client.list_uploads(AGREEMENT, dataset)))
    hub_process.stop()

    values = identifier_values(summary.files)
    assert len(values) > 1000, "the search must cover a real set of identifiers"
    after = table_dumps(hub)
    assert after["agreements"] == before["agreements"], "uploads must not touch agreements"
    assert len(after["records"]) > 10_000, "the tables should hold the uploaded records"
    haystacks = {f"table {name}": text for name, text in after.items() if name != "agreements"}
    haystacks["decoded attribute batches"] = decoded_attribute_batches(hub)
    haystacks["hub log"] = hub_process.log_text()
    haystacks["API responses"] = "\n".join(responses)
    searched = values
    if hub.engine.dialect.name == "sqlite":
        hub.engine.dispose()
        haystacks["raw SQLite bytes"] = sqlite_bytes(hub)
        searched = {v for v in values if v not in before_raw}
        assert len(searched) > 0.9 * len(values)

    for where, haystack in haystacks.items():
        found = sorted(v for v in searched if v in haystack)
        assert not found, f"{len(found)} identifier values found in the {where}"
