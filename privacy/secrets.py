"""Loading the master secret from which every linkage key is derived.

Why: the master secret is the one thing that turns pseudonyms back into something guessable
(names and dates of birth are a small space), so it is never stored in the database and never
echoed. Operators supply it from exactly one source: a value (typically an environment
variable the service reads), a file (e.g. a mounted Kubernetes/Docker secret) or a command
that prints it (how a KMS or vault is referenced, e.g. ``vault kv get -field=secret kv/vru``).
Every failure raises :class:`MasterSecretError` with what to do next, never the secret itself.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import shlex
import subprocess
from pathlib import Path

__all__ = [
    "MIN_SECRET_BYTES",
    "MasterSecretError",
    "decode_master_secret",
    "generate_master_secret",
    "load_master_secret",
]

MIN_SECRET_BYTES = 32
COMMAND_TIMEOUT_SECONDS = 10.0

_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


class MasterSecretError(Exception):
    """The master secret could not be loaded. The message says what to fix; it never holds the
    secret."""


def generate_master_secret() -> str:
    """A fresh master secret: 32 random bytes, hex encoded (64 characters)."""
    return secrets.token_hex(MIN_SECRET_BYTES)


def decode_master_secret(text: str, *, source: str) -> bytes:
    """Decode hex or base64 (standard or URL-safe) text into at least 32 bytes.

    ``source`` names where the text came from, for the error message.
    """
    value = text.strip()
    if not value:
        raise MasterSecretError(
            f"The master secret from {source} is empty. "
            "Supply 32 or more random bytes, hex or base64 encoded "
            "(privacy.secrets.generate_master_secret() makes one)."
        )
    decoded: bytes | None = None
    if _HEX_RE.match(value) and len(value) % 2 == 0:
        decoded = bytes.fromhex(value)
        encoding = "hex"
    elif _BASE64_RE.match(value):
        encoding = "base64"
        padded = value + "=" * (-len(value) % 4)
        try:
            if "-" in value or "_" in value:
                decoded = base64.urlsafe_b64decode(padded)
            else:
                decoded = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            decoded = None
    if decoded is None:
        raise MasterSecretError(
            f"The master secret from {source} is neither valid hex nor valid base64 "
            f"({len(value)} characters read). Check the value was copied whole, without quotes "
            "or line breaks inside it."
        )
    if len(decoded) < MIN_SECRET_BYTES:
        raise MasterSecretError(
            f"The master secret from {source} decodes ({encoding}) to {len(decoded)} bytes; "
            f"at least {MIN_SECRET_BYTES} are required. Generate a new one with "
            "privacy.secrets.generate_master_secret() (64 hex characters)."
        )
    return decoded


def _run_command(command: str) -> str:
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise MasterSecretError(
            f"The master secret command cannot be parsed ({exc}). Check its quoting."
        ) from None
    if not argv:
        raise MasterSecretError("The master secret command is empty. Give the command to run.")
    program = argv[0]
    try:
        result = subprocess.run(  # noqa: S603 - argv from the operator's own configuration
            argv,
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
            text=True,
        )
    except FileNotFoundError:
        raise MasterSecretError(
            f"The master secret command {program!r} was not found. Install it or give its full "
            "path."
        ) from None
    except PermissionError:
        raise MasterSecretError(
            f"The master secret command {program!r} is not executable by this user."
        ) from None
    except subprocess.TimeoutExpired:
        raise MasterSecretError(
            f"The master secret command {program!r} did not finish within "
            f"{COMMAND_TIMEOUT_SECONDS:g} s. Check the KMS/vault is reachable and needs no "
            "interactive login."
        ) from None
    if result.returncode != 0:
        # stderr may be diagnostic, but a misbehaving tool could print the secret there: report
        # only its size, and leave the operator to rerun the command themselves.
        raise MasterSecretError(
            f"The master secret command {program!r} failed with exit status "
            f"{result.returncode} ({len(result.stderr)} characters on stderr, not shown). "
            "Run it by hand as the service user to see why."
        )
    return result.stdout


def load_master_secret(
    *, value: str | None = None, file: Path | None = None, command: str | None = None
) -> bytes:
    """Load the master secret from exactly one of ``value``, ``file`` or ``command``.

    ``value`` and the contents of ``file`` are hex or base64; ``command`` is split with shlex,
    run without a shell (timeout 10 s) and must print the hex or base64 secret on stdout.
    Returns the decoded secret (>= 32 bytes). Raises :class:`MasterSecretError`.
    """
    given = [name for name, v in (("value", value), ("file", file), ("command", command)) if v]
    if len(given) != 1:
        what = "none was" if not given else " and ".join(given) + " were"
        raise MasterSecretError(
            "Configure exactly one source for the master secret (a value, a file or a command); "
            f"{what} given."
        )
    if value:
        return decode_master_secret(value, source="the configured value")
    if file:
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MasterSecretError(
                f"The master secret file {path} does not exist. Check the path or the mount."
            ) from None
        except PermissionError:
            raise MasterSecretError(
                f"The master secret file {path} is not readable by this user. Fix its owner or "
                "mode (0400, owned by the service user)."
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MasterSecretError(
                f"The master secret file {path} could not be read as text ({type(exc).__name__})."
                " It must hold the hex or base64 secret."
            ) from None
        return decode_master_secret(text, source=f"file {path}")
    assert command is not None
    return decode_master_secret(_run_command(command), source="the command output")
