"""The ``hub`` command line against a real hub process over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from hub.auth.clients import ClientStore
from hub.cli import app
from hub.services import Hub
from tests.adapters.adapter_extracts import extract_csv
from tests.conftest import HubProcess
from tests.hub.helpers import AGREEMENT, POLICE

runner = CliRunner()


def credentials(hub: Hub, role: str, organisation: str) -> dict[str, str]:
    """A real client for ``role`` of ``organisation``, as the CLI reads it from the environment."""
    client, secret = ClientStore(hub.engine).create(organisation=organisation, role=role)
    assert secret is not None
    return {"HUB_CLIENT_ID": client.client_id, "HUB_CLIENT_SECRET": secret}


def test_upload_prints_a_receipt_and_is_idempotent(
    hub: Hub, hub_process: HubProcess, tmp_path: Path
) -> None:
    env = credentials(hub, "data_officer", "met-police")
    extract = tmp_path / "police-2026-10.csv"
    extract.write_bytes(extract_csv(POLICE, {"police_person_id": "P1"}, {"police_person_id": "P2"}))
    args = [
        "upload",
        str(extract),
        "--agreement",
        AGREEMENT,
        "--dataset",
        POLICE,
        "--hub-url",
        hub_process.url,
    ]
    result = runner.invoke(app, env=env, args=args)
    assert result.exit_code == 0, result.output
    assert "rows_accepted" in result.output and "Upload receipt" in result.output
    assert "withdraw this upload first" not in result.output  # every row stored

    partial = tmp_path / "police-2026-11.csv"
    partial.write_bytes(
        extract_csv(
            POLICE,
            {"police_person_id": "P3", "crime_reference": "C3"},
            {"police_person_id": "P4", "crime_reference": "C4", "sex": "banana"},
        )
    )
    some_refused = runner.invoke(app, env=env, args=[*args[:1], str(partial), *args[2:]])
    assert some_refused.exit_code == 0, some_refused.output
    # re-sending the corrected whole file would store its good rows twice: say what to do
    assert "withdraw this upload first" in " ".join(some_refused.output.split())

    again = runner.invoke(app, env=env, args=[*args, "--json"])
    assert again.exit_code == 0, again.output
    receipt = json.loads(again.stdout)
    assert receipt["rows_accepted"] == 2

    listed = runner.invoke(
        app,
        env=env,
        args=[
            "uploads",
            "list",
            "--agreement",
            AGREEMENT,
            "--dataset",
            POLICE,
            "--hub-url",
            hub_process.url,
        ],
    )
    assert receipt["upload_id"] in listed.output

    withdrawn = runner.invoke(
        app,
        env=env,
        args=[
            "uploads",
            "withdraw",
            receipt["upload_id"],
            "--reason",
            "test",
            "--hub-url",
            hub_process.url,
        ],
    )
    assert withdrawn.exit_code == 0, withdrawn.output
    assert "withdrawn" in withdrawn.output


def test_a_refused_upload_exits_non_zero_with_the_hubs_reason(
    hub: Hub, hub_process: HubProcess, tmp_path: Path
) -> None:
    env = credentials(hub, "data_officer", "met-police")
    extract = tmp_path / "police.csv"
    extract.write_bytes(extract_csv(POLICE, drop=("offence_datetime_from",)))
    result = runner.invoke(
        app,
        env=env,
        args=[
            "upload",
            str(extract),
            "--agreement",
            AGREEMENT,
            "--dataset",
            POLICE,
            "--hub-url",
            hub_process.url,
        ],
    )
    assert result.exit_code == 1
    assert "offence_datetime_from" in result.output


def test_agreements_commands(hub: Hub, hub_process: HubProcess) -> None:
    env = credentials(hub, "hub_admin", "hub-operator")
    listed = runner.invoke(app, env=env, args=["agreements", "list", "--hub-url", hub_process.url])
    assert listed.exit_code == 0, listed.output
    assert "london-vru-partnership" in listed.output
    shown = runner.invoke(
        app,
        env=env,
        args=["agreements", "show", "london-vru-partnership", "--hub-url", hub_process.url],
    )
    assert '"linkage_domain": "london-vru"' in shown.output
    odrl = runner.invoke(
        app,
        env=env,
        args=["agreements", "odrl", "cardiff-model-ae-police", "--hub-url", hub_process.url],
    )
    assert '"@type": "Agreement"' in odrl.output
    suspended = runner.invoke(
        app,
        env=env,
        args=[
            "agreements",
            "suspend",
            "cardiff-model-ae-police",
            "--reason",
            "review",
            "--hub-url",
            hub_process.url,
        ],
    )
    assert "suspended" in suspended.output
    missing = runner.invoke(
        app, env=env, args=["agreements", "show", "nope", "--hub-url", hub_process.url]
    )
    assert missing.exit_code == 1


def test_an_unreachable_hub_is_reported_plainly(tmp_path: Path) -> None:
    extract = tmp_path / "police.csv"
    extract.write_bytes(extract_csv(POLICE))
    result = runner.invoke(
        app,
        [
            "upload",
            str(extract),
            "--agreement",
            AGREEMENT,
            "--dataset",
            POLICE,
            "--hub-url",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_demo_login_prints_working_credentials(
    hub: Hub, hub_process: HubProcess, tmp_path: Path
) -> None:
    from hub.demo import write_demo_credentials

    write_demo_credentials(hub)
    env = {"HUB_DATA_DIR": str(hub.settings.data_dir)}
    login = runner.invoke(app, env=env, args=["demo-login", "met-police", "data_officer"])
    assert login.exit_code == 0, login.output
    exports = dict(line.removeprefix("export ").split("=", 1) for line in login.stdout.splitlines())
    assert set(exports) == {"HUB_URL", "HUB_CLIENT_ID", "HUB_CLIENT_SECRET"}
    assert exports.pop("HUB_URL") == hub.settings.issuer
    extract = tmp_path / "police.csv"
    extract.write_bytes(extract_csv(POLICE))
    uploaded = runner.invoke(
        app,
        env=exports,
        args=[
            "upload",
            str(extract),
            "--agreement",
            AGREEMENT,
            "--dataset",
            POLICE,
            "--hub-url",
            hub_process.url,
            "--json",
        ],
    )
    assert uploaded.exit_code == 0, uploaded.output
    unknown = runner.invoke(app, env=env, args=["demo-login", "nobody", "analyst"])
    assert unknown.exit_code == 1 and "met-police data_officer" in unknown.output
