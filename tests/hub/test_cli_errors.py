"""The ``hub`` command's mistakes are one clear message and a non-zero exit, never a traceback.

Every test runs the real command (typer's CliRunner in this process, or a subprocess) on real
files in ``tmp_path``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner, Result

from agreements import example_paths
from hub.cli import app
from hub.cli_errors import HubGroup
from hub.services import Hub
from tests.conftest import TEST_MASTER_SECRET, HubProcess

runner = CliRunner()
WIDE = {"COLUMNS": "200"}  # no wrapping, so messages can be matched whole
AGREEMENT_FILE = next(p for p in example_paths() if p.name == "london-vru-partnership.yaml")


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return runner.invoke(app, list(args), env={**WIDE, **(env or {})})


def text(result: Result) -> str:
    """The output (stdout and stderr) with rich's boxes and line breaks flattened."""
    return re.sub(r"[│╭╮╰╯─\s]+", " ", result.output)


def assert_fails_clearly(result: Result, *phrases: str, exit_code: int | None = None) -> str:
    output = text(result)
    assert result.exit_code != 0, output
    if exit_code is not None:
        assert result.exit_code == exit_code, output
    # A clean exit, not an exception escaping the command (CliRunner would hide its traceback).
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    for phrase in phrases:
        assert phrase in output, output
    return output


def private_key_file(path: Path) -> Path:
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def offline_hub_env(tmp_path: Path) -> dict[str, str]:
    """Settings for commands that must fail before touching any database (SQLite regardless)."""
    return {
        "HUB_DATA_DIR": str(tmp_path / "data"),
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "HUB_MASTER_SECRET": TEST_MASTER_SECRET,
    }


# query ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--epsilon", "nan"),
        ("--epsilon", "inf"),
        ("--epsilon", "-1"),
        ("--half-width", "nan"),
        ("--quantile", "1.5"),
    ],
)
def test_query_refuses_a_non_finite_or_out_of_range_number(option: str, value: str) -> None:
    result = invoke(
        "query",
        "--agreement",
        "london-vru-partnership",
        "--dataset",
        "police_violence_offences",
        option,
        value,
        "--hub-url",
        "http://127.0.0.1:9",
    )
    assert_fails_clearly(result, f"Invalid value for '{option}'", "finite number", exit_code=2)


# agreements -------------------------------------------------------------------------------
def sign(tmp_path: Path, *, key: Path, party: str = "mopac-vru", output: Path | None) -> Result:
    return invoke(
        "agreements",
        "sign",
        str(AGREEMENT_FILE),
        "--key",
        str(key),
        "--party",
        party,
        "--output",
        str(output or tmp_path / "signed.json"),
    )


def test_sign_with_a_missing_key_file(tmp_path: Path) -> None:
    result = sign(tmp_path, key=tmp_path / "missing.pem", output=None)
    assert_fails_clearly(result, "'--key'", "does not exist", exit_code=2)


def test_sign_with_a_key_that_is_not_pem(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not a key\n")
    result = sign(tmp_path, key=key, output=None)
    assert_fails_clearly(result, f"{key} is not a PEM private key", "Ed25519", exit_code=1)
    assert not (tmp_path / "signed.json").exists()


def test_sign_as_someone_who_is_not_a_party(tmp_path: Path) -> None:
    result = sign(tmp_path, key=private_key_file(tmp_path / "k.pem"), party="nobody", output=None)
    assert_fails_clearly(result, "'nobody' is not a party", "mopac-vru", exit_code=1)


def test_sign_into_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    result = sign(
        tmp_path, key=private_key_file(tmp_path / "k.pem"), output=tmp_path / "nope" / "s.json"
    )
    assert_fails_clearly(result, f"the folder {tmp_path / 'nope'} does not exist", exit_code=1)


def test_sign_still_signs(tmp_path: Path) -> None:
    output = tmp_path / "signed.json"
    result = sign(tmp_path, key=private_key_file(tmp_path / "k.pem"), output=output)
    assert result.exit_code == 0, result.output
    assert json.loads(output.read_text())["signatures"][0]["signer"] == "mopac-vru"


def test_validate_a_deeply_nested_file(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = invoke("agreements", "validate", str(deep))
    assert_fails_clearly(result, "Invalid:", "deep.json", "nested", exit_code=1)


# synth ------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", ["0", "-1", "nan"])
def test_synth_refuses_a_scale_that_is_not_positive(tmp_path: Path, scale: str) -> None:
    result = invoke("synth", str(tmp_path / "out"), "--scale", scale)
    assert_fails_clearly(result, "Invalid value for '--scale'", "greater than 0", exit_code=2)
    assert not (tmp_path / "out").exists()


def test_synth_into_an_existing_file(tmp_path: Path) -> None:
    existing = tmp_path / "extracts"
    existing.write_text("mine\n")
    result = invoke("synth", str(existing), "--scale", "0.01")
    assert_fails_clearly(result, f"{existing} is a file, not a folder", exit_code=1)
    assert existing.read_text() == "mine\n"


def test_synth_into_a_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = invoke("synth", str(tmp_path / "file" / "out"), "--scale", "0.01")
    assert_fails_clearly(result, "cannot create the folder", exit_code=1)


# secret -----------------------------------------------------------------------------------
def test_secret_generate_never_overwrites(tmp_path: Path) -> None:
    existing = tmp_path / "master.key"
    existing.write_text("old\n")
    result = invoke("secret", "generate", str(existing))
    assert_fails_clearly(result, f"{existing} already exists", exit_code=1)
    assert existing.read_text() == "old\n"


def test_secret_generate_on_a_folder_or_under_a_missing_one(tmp_path: Path) -> None:
    assert_fails_clearly(invoke("secret", "generate", str(tmp_path)), "is a folder", exit_code=1)
    missing = tmp_path / "nope" / "master.key"
    assert_fails_clearly(
        invoke("secret", "generate", str(missing)),
        f"the folder {missing.parent} does not exist",
        exit_code=1,
    )


# audit ------------------------------------------------------------------------------------
def test_audit_verify_with_missing_or_wrong_files(tmp_path: Path) -> None:
    note = tmp_path / "checkpoint.note"
    note.write_text("x\n")
    key = tmp_path / "audit.vkey"
    key.write_text("name+00000000+AAAA\n")
    export = tmp_path / "audit.jsonl"
    export.write_text("")
    base = ["audit", "verify", "--checkpoint", str(note)]
    missing_export = invoke(*base, str(tmp_path / "gone.jsonl"), "--public-key", str(key))
    assert_fails_clearly(missing_export, "does not exist", exit_code=2)
    folder_export = invoke(*base, str(tmp_path), "--public-key", str(key))
    assert_fails_clearly(folder_export, "is a directory", exit_code=2)
    missing_key = invoke(*base, str(export), "--public-key", str(tmp_path / "gone.vkey"))
    assert_fails_clearly(missing_key, "'--public-key'", "does not exist", exit_code=2)


def test_audit_verify_flags_a_junk_line_after_the_checkpoint(hub: Hub, tmp_path: Path) -> None:
    env = {
        "HUB_DATA_DIR": str(hub.settings.data_dir),
        "HUB_DATABASE_URL": hub.settings.resolved_database_url,
        "HUB_MASTER_SECRET": TEST_MASTER_SECRET,
    }
    note, key, export = tmp_path / "cp.note", tmp_path / "audit.vkey", tmp_path / "audit.jsonl"
    assert invoke("audit", "checkpoint", "--output", str(note), env=env).exit_code == 0
    key.write_text(invoke("audit", "key", env=env).stdout)
    assert invoke("audit", "export", "--output", str(export), env=env).exit_code == 0
    events = len(export.read_text().splitlines())
    assert events > 0
    args = ["audit", "verify", str(export), "--checkpoint", str(note), "--public-key", str(key)]
    ok = invoke(*args)
    assert ok.exit_code == 0 and f"OK: {events} events" in ok.output, ok.output

    with export.open("a") as handle:
        handle.write("junk\n")
    assert_fails_clearly(
        invoke(*args), "FAILED", f"line {events + 1}", "not a valid audit event", exit_code=1
    )


# settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["demo", "--no-serve"], ["serve"], ["db", "upgrade"]])
def test_an_invalid_setting_is_named_without_its_value(tmp_path: Path, command: list[str]) -> None:
    env = {
        **offline_hub_env(tmp_path),
        "HUB_TOKEN_LIFETIME_SECONDS": "10",
        "HUB_KEY_VERSION": "not-a-number-xyz",
    }
    result = invoke(*command, env=env)
    output = assert_fails_clearly(
        result, "HUB_TOKEN_LIFETIME_SECONDS", "HUB_KEY_VERSION", "greater than or equal to 30"
    )
    assert "not-a-number-xyz" not in output and "ValidationError" not in output
    assert not (tmp_path / "data").exists()  # nothing was created


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("not-a-database-url", "HUB_DATABASE_URL is not a database URL"),
        # nothing listens on port 1: the real driver fails to connect
        ("postgresql+psycopg://nobody@127.0.0.1:1/hub", "cannot reach the database"),
    ],
)
def test_a_bad_database_url_is_one_line(tmp_path: Path, url: str, says: str) -> None:
    env = {**offline_hub_env(tmp_path), "HUB_DATABASE_URL": url}
    assert_fails_clearly(invoke("clients", "list", env=env), says, exit_code=1)


def test_an_invalid_setting_in_a_real_process(tmp_path: Path) -> None:
    env = {**os.environ, **offline_hub_env(tmp_path), "HUB_TOKEN_LIFETIME_SECONDS": "10"}
    env.pop("HUB_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("Error: invalid hub setting HUB_TOKEN_LIFETIME_SECONDS")


# clients ----------------------------------------------------------------------------------
def test_budgets_with_a_wrong_secret_says_to_check_the_credentials_once(
    hub: Hub, hub_process: HubProcess
) -> None:
    result = invoke(
        "budgets",
        "--hub-url",
        hub_process.url,
        "--client-id",
        "nobody",
        "--client-secret",
        "wrong",
    )
    output = assert_fails_clearly(result, "Refused:", exit_code=1)
    assert output.count("--client-id") == 1, output


# the safety net ---------------------------------------------------------------------------
def _failing_app(error: Exception) -> typer.Typer:
    failing = typer.Typer(cls=HubGroup)

    @failing.command()
    def explode() -> None:
        raise error

    @failing.command()
    def other() -> None:  # a group of one command would run it without its name
        pass

    return failing


def test_an_unexpected_os_error_is_one_line_and_a_bug_is_not_hidden(tmp_path: Path) -> None:
    missing = tmp_path / "gone.csv"
    error = FileNotFoundError(2, "No such file or directory", str(missing))
    result = runner.invoke(_failing_app(error), ["explode"])
    assert_fails_clearly(result, f"Error: {missing}: No such file or directory", exit_code=1)
    assert result.output.count("\n") == 1

    debug = runner.invoke(_failing_app(ValueError("boom")), ["explode"], env={"HUB_DEBUG": "1"})
    assert isinstance(debug.exception, ValueError)  # HUB_DEBUG=1: the real exception
    bug = runner.invoke(_failing_app(KeyError("boom")), ["explode"])
    assert isinstance(bug.exception, KeyError)  # not a user's mistake: never disguised


# demo -------------------------------------------------------------------------------------
def test_demo_login_prints_the_demos_url_for_its_port(tmp_path: Path) -> None:
    env = offline_hub_env(tmp_path)
    del env["HUB_MASTER_SECRET"]  # the demo makes its own
    demo = invoke("demo", "--no-serve", "--port", "8010", "--scale", "0.01", env=env)
    assert demo.exit_code == 0, demo.output
    assert "HUB_PUBLIC_URL" not in os.environ  # set for the demo only
    credentials = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
    assert credentials["token_endpoint"] == "http://127.0.0.1:8010/oauth/token"
    login = invoke("demo-login", "met-police", "data_officer", env=env)
    assert login.exit_code == 0, login.output
    assert "export HUB_URL=http://127.0.0.1:8010\n" in login.stdout
    # run again on another port: the same clients, now at that port
    again = invoke("demo", "--no-serve", "--port", "8011", "--scale", "0.01", env=env)
    assert again.exit_code == 0, again.output
    rewritten = json.loads((tmp_path / "data" / "demo-credentials.json").read_text())
    assert rewritten["clients"] == credentials["clients"]
    assert rewritten["token_endpoint"] == "http://127.0.0.1:8011/oauth/token"
    assert (tmp_path / "data" / "demo-credentials.json").stat().st_mode & 0o777 == 0o600
