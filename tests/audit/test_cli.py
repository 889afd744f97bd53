"""`hub audit`: export, checkpoint, key and verify, offline and against the database."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import rfc8785
from sqlalchemy import text
from typer.testing import CliRunner

from hub.audit.events import canonical_json
from hub.audit_cli import audit_app
from hub.services import Hub
from tests.audit.conftest import append_many, disable_append_only
from tests.conftest import TEST_MASTER_SECRET

runner = CliRunner()


@pytest.fixture
def env(ledger: Hub) -> dict[str, str]:
    return {
        "HUB_DATA_DIR": str(ledger.settings.data_dir),
        "HUB_DATABASE_URL": ledger.settings.resolved_database_url,
        "HUB_MASTER_SECRET": TEST_MASTER_SECRET,
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(audit_app, list(args), env=env)
    return result.exit_code, result.output


def test_export_checkpoint_and_offline_verify(
    ledger: Hub, env: dict[str, str], tmp_path: Path
) -> None:
    append_many(ledger.engine, 12)
    old = tmp_path / "old.note"
    assert run(env, "checkpoint", "--output", str(old))[0] == 0
    append_many(ledger.engine, 9, start=12)
    code, note = run(env, "checkpoint")
    assert code == 0 and note.startswith("vru-hub.example/audit\n21\n")
    (tmp_path / "new.note").write_text(note)
    code, key = run(env, "key")
    (tmp_path / "audit.vkey").write_text(key)
    export = tmp_path / "audit.jsonl"
    assert run(env, "export", "--output", str(export))[0] == 0
    offline = {"HOME": str(tmp_path)}  # no hub settings needed
    args = [
        "verify",
        str(export),
        "--checkpoint",
        str(tmp_path / "new.note"),
        "--previous",
        str(old),
        "--public-key",
        str(tmp_path / "audit.vkey"),
    ]
    code, output = run(offline, *args)
    assert code == 0, output
    assert "OK: 21 events" in output and "previous checkpoint at 12" in output
    # the key as GET /v1/audit/key serves it (JSON) works as well
    (tmp_path / "audit-key.json").write_text(json.dumps({"verifier_key": key.strip()}))
    code, output = run(offline, *args[:-1], str(tmp_path / "audit-key.json"))
    assert code == 0 and "OK: 21 events" in output, output
    lines = export.read_text().splitlines(keepends=True)
    lines[16] = lines[16].replace("client-", "client_", 1)
    export.write_text("".join(lines))
    code, output = run(offline, *args)
    assert code == 1 and "event 16" in output, output
    code, output = run(env, "verify", "--database")
    assert code == 0 and "21 events" in output, output
    with ledger.engine.begin() as connection:
        disable_append_only(connection)
        connection.execute(text("UPDATE audit_events SET actor = 'x' WHERE \"index\" = 3"))
    code, output = run(env, "verify", "--database")
    assert code == 1 and "event 3" in output, output


@pytest.mark.parametrize(
    ("command", "api"),
    [
        (["export"], "GET /v1/audit/export"),
        (["checkpoint"], "GET /v1/audit/checkpoint"),
        (["key"], "GET /v1/audit/key"),
        (["verify", "--database"], "GET /v1/audit/export"),
    ],
)
def test_host_commands_elsewhere_say_where_to_run_them_and_create_nothing(
    tmp_path: Path, command: list[str], api: str
) -> None:
    # An IG lead on a laptop, after `hub demo-login`: no hub database, key or secret here.
    elsewhere = tmp_path / "var"
    code, output = run({"HUB_DATA_DIR": str(elsewhere), "HOME": str(tmp_path)}, *command)
    assert code == 1, output
    said = " ".join(output.split())
    assert "runs on the hub's host" in said and api in said, output
    assert "Traceback" not in output
    assert not elsewhere.exists()


def test_canonical_json_is_rfc8785() -> None:
    rng = random.Random(8785)
    alphabet = ["a", "é", "\u2028", "\x00", "\x1f", '"', "\\", "/", "😀", "\x7f", "\n", "€"]
    for _ in range(2000):
        record = {
            "index": rng.randrange(10**12),
            "reason": "".join(rng.choice(alphabet) for _ in range(rng.randrange(8))),
            "epsilon": rng.choice([None, 0.1, 1.0, 1e-7, 1e21, 123456.789, rng.random()]),
            "actor": rng.choice([None, "client-1"]),
        }
        assert canonical_json(record) == rfc8785.dumps(record)
