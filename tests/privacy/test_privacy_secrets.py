"""Master secret loading: every source, every failure, and no failure echoes the secret."""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

import pytest

from privacy.secrets import MasterSecretError, generate_master_secret, load_master_secret

SECRET = bytes(range(100, 140))  # 40 bytes
HEX = SECRET.hex()
B64 = base64.b64encode(SECRET).decode()


def assert_not_echoed(error: MasterSecretError, *secrets: str) -> None:
    message = str(error)
    for secret in secrets:
        assert secret not in message
        assert secret[:16] not in message


def test_generate_master_secret() -> None:
    a, b = generate_master_secret(), generate_master_secret()
    assert a != b and len(a) == 64
    assert load_master_secret(value=a) == bytes.fromhex(a)


def test_value_hex_and_base64() -> None:
    assert load_master_secret(value=HEX) == SECRET
    assert load_master_secret(value=HEX.upper()) == SECRET
    assert load_master_secret(value=f"  {B64}\n") == SECRET
    urlsafe = base64.urlsafe_b64encode(b"\xfb\xff" * 20).decode().rstrip("=")
    assert load_master_secret(value=urlsafe) == b"\xfb\xff" * 20


def test_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text(HEX + "\n")
    assert load_master_secret(file=path) == SECRET


def test_command() -> None:
    command = f"{sys.executable} -c \"print('{B64}')\""
    assert load_master_secret(command=command) == SECRET


def test_too_short() -> None:
    short = os.urandom(16).hex()
    with pytest.raises(MasterSecretError) as caught:
        load_master_secret(value=short)
    assert "16 bytes" in str(caught.value) and "32" in str(caught.value)
    assert_not_echoed(caught.value, short)


def test_neither_hex_nor_base64() -> None:
    bad = "not a secret!" + HEX
    with pytest.raises(MasterSecretError) as caught:
        load_master_secret(value=bad)
    assert "neither valid hex nor valid base64" in str(caught.value)
    assert_not_echoed(caught.value, bad, HEX)


def test_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(MasterSecretError, match="exactly one") as caught:
        load_master_secret(value=HEX, file=tmp_path / "x")
    assert_not_echoed(caught.value, HEX)
    with pytest.raises(MasterSecretError, match="none was given"):
        load_master_secret()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MasterSecretError, match="does not exist"):
        load_master_secret(file=tmp_path / "absent")


def test_command_failing_does_not_echo_its_output() -> None:
    command = (
        f"{sys.executable} -c \"import sys; print('{HEX}'); "
        f"print('{HEX}', file=sys.stderr); sys.exit(3)\""
    )
    with pytest.raises(MasterSecretError) as caught:
        load_master_secret(command=command)
    assert "exit status 3" in str(caught.value)
    assert_not_echoed(caught.value, HEX)


def test_command_not_found_and_unparseable() -> None:
    with pytest.raises(MasterSecretError, match="not found"):
        load_master_secret(command="/nonexistent/kms-tool decrypt")
    with pytest.raises(MasterSecretError, match="quoting"):
        load_master_secret(command="vault kv get 'unterminated")


def test_command_output_too_short_is_not_echoed() -> None:
    short = os.urandom(8).hex()
    with pytest.raises(MasterSecretError, match="8 bytes") as caught:
        load_master_secret(command=f"{sys.executable} -c \"print('{short}')\"")
    assert_not_echoed(caught.value, short)


def test_command_is_not_run_through_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    with pytest.raises(MasterSecretError):
        load_master_secret(command=f"echo {HEX} ; touch {marker}")
    assert not marker.exists()
