"""``hub audit``: export the log, sign a checkpoint, print the key, verify (offline or not).

Outside the ``hub.audit`` package, and importing it only inside the commands: the package
brings SQLAlchemy and the models (~0.2 s), which every other ``hub`` command (an upload, say)
would otherwise wait for at start.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.markup import escape

from hub.cli_errors import DEBUG_HELP, HubGroup, UserError, load_settings

if TYPE_CHECKING:
    from hub.audit.ledger import NoteSigner
    from hub.services import Hub

audit_app = typer.Typer(
    cls=HubGroup,
    help="The audit log: export, checkpoint, key, verify.",
    epilog=DEBUG_HELP,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


# export, checkpoint and key read the hub's own database and signing key: they run on the
# hub's host. An IG lead elsewhere uses the API, which the same commands point to.
_ON_THE_HOST = (
    "`hub audit {command}` reads the hub's own database and keys, so it runs on the hub's "
    "host (with its HUB_DATA_DIR or HUB_DATABASE_URL). From elsewhere, with an IG lead's "
    "token, use the API: {api} (docs/audit.md)."
)
_API_OF = {
    "export": "GET /v1/audit/export?format=jsonl",
    "checkpoint": "GET /v1/audit/checkpoint",
    "key": "GET /v1/audit/key",
    "verify --database": "GET /v1/audit/export and /v1/audit/checkpoint, then `hub audit verify "
    "EXPORT --checkpoint NOTE --public-key KEY` offline",
}


def _not_on_the_host(command: str, reason: str) -> UserError:
    return UserError(f"{reason}. " + _ON_THE_HOST.format(command=command, api=_API_OF[command]))


def _local_hub(command: str) -> Hub:
    """The hub on this host, without creating anything: no database file or master secret
    here means this is not the hub's host."""
    from hub.keyring import MasterSecretMissing, master_secret_from
    from hub.services import build_hub

    settings = load_settings()
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise _not_on_the_host(command, f"There is no hub database at {settings.data_dir}")
    try:
        master_secret_from(settings)  # before build_hub, which creates the data folder
    except MasterSecretMissing:
        raise _not_on_the_host(command, "This hub's master secret is not configured here") from None
    return build_hub(settings, migrate=False)


def _signer(command: str) -> NoteSigner:
    """The hub's checkpoint signer, from its key file (no database or master secret needed)."""
    from hub.audit.ledger import NoteSigner

    settings = load_settings()
    if not settings.signing_key_file.exists():
        raise _not_on_the_host(
            command, f"There is no hub signing key at {settings.signing_key_file}"
        )
    return NoteSigner.from_key_file(settings.audit_origin, settings.signing_key_file)


def load_public_key(path: Path) -> tuple[str | None, Ed25519PublicKey]:
    """A C2SP verifier key (``name+hash+key``), the JSON of ``GET /v1/audit/key`` (which holds
    one), or a PEM public key."""
    import json

    from hub.audit import notes

    text = _read_text(path, "the hub's audit key").strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text)["verifier_key"]).strip()
        except (ValueError, KeyError, TypeError):
            raise notes.NoteError(
                f"{path} is JSON but not the hub's key document (GET /v1/audit/key), which has "
                "a verifier_key"
            ) from None
    if "+" in text and "\n" not in text and not text.startswith("-----"):
        name, key = notes.parse_verifier_key(text)
        return name, key
    if text.startswith("-----BEGIN"):
        try:
            pem_key = serialization.load_pem_public_key(text.encode())
        except (ValueError, UnsupportedAlgorithm):
            raise notes.NoteError(
                f"{path} is not a PEM public key (a private key, or damaged?); give the hub's "
                "verifier key (GET /v1/audit/key) or its PEM public key"
            ) from None
        if not isinstance(pem_key, Ed25519PublicKey):
            raise notes.NoteError(f"{path} is not an Ed25519 public key")
        return None, pem_key
    raise notes.NoteError(f"{path} is neither a verifier key (name+hash+key) nor a PEM key")


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a text file; give {what}.") from None


def _check_folder_for(output: Path) -> None:
    if not output.parent.is_dir():
        raise UserError(
            f"the folder {output.parent} does not exist; create it first or give another path."
        )


class _ExportLines:
    """The export's lines, counted, so a failure can say whether it names a line."""

    def __init__(self, lines: Iterable[bytes]) -> None:
        self._lines = lines
        self.index = -1  # of the line being read

    def __iter__(self) -> Iterator[bytes]:
        for index, line in enumerate(self._lines):
            self.index = index
            yield line


def _existing_file_option(help: str) -> Any:
    """An option naming a file that must exist (typer checks it before the command runs)."""
    return typer.Option(exists=True, dir_okay=False, readable=True, help=help)


@audit_app.command("verify")
def verify(
    export: Annotated[
        Path | None,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="JSON Lines export (`hub audit export`, GET /v1/audit/export).",
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None, _existing_file_option("The signed checkpoint (note) you kept.")
    ] = None,
    previous: Annotated[
        Path | None, _existing_file_option("An older checkpoint: the log must extend it.")
    ] = None,
    public_key: Annotated[
        Path | None,
        _existing_file_option("The hub's audit key: verifier key (GET /v1/audit/key) or PEM."),
    ] = None,
    origin: Annotated[
        str | None, typer.Option(help="Expected origin (default: the verifier key's name).")
    ] = None,
    database: Annotated[
        bool, typer.Option("--database", help="Verify the hub's own database (operators).")
    ] = False,
) -> None:
    """Verify the audit log and name the first event that fails. Offline on an export."""
    from hub.audit import notes
    from hub.audit.verify import VerificationFailed, verify_database, verify_export

    lines: _ExportLines | None = None
    try:
        if database:
            hub = _local_hub("verify --database")
            signer = _signer("verify --database")
            db_result = verify_database(hub.engine, signer.name, signer.public_key)
            console.print(
                f"OK: {db_result.size} events, every leaf and node recomputed, "
                f"{db_result.checkpoints} checkpoints verified."
            )
            return
        if export is None or checkpoint is None or public_key is None:
            err_console.print("Give EXPORT, --checkpoint and --public-key (or --database).")
            raise typer.Exit(2)
        name, key = load_public_key(public_key)
        key_name = name or origin
        if key_name is None:
            err_console.print("A PEM key has no name: give --origin (the checkpoint's key name).")
            raise typer.Exit(2)
        note = _read_text(checkpoint, "the signed checkpoint (a note)")
        previous_note = _read_text(previous, "the older checkpoint") if previous else None
        with export.open("rb") as handle:
            lines = _ExportLines(handle)
            result = verify_export(
                lines, note, key_name, key, origin=origin, previous_note=previous_note
            )
    except VerificationFailed as failure:
        where = ""
        if failure.index is not None:
            where = f"event {failure.index}: "
            if lines is not None and failure.index <= lines.index:  # a line of the export
                where = f"line {failure.index + 1} (event {failure.index}): "
        err_console.print(f"[bold red]FAILED[/] {escape(where + failure.reason)}", highlight=False)
        raise typer.Exit(1) from None
    except notes.NoteError as error:
        err_console.print(f"[bold red]FAILED[/] public key: {escape(str(error))}", highlight=False)
        raise typer.Exit(1) from None
    extra = result.events_read - result.size
    console.print(
        f"OK: {result.size} events match the checkpoint"
        + (
            f", consistent with the previous checkpoint at {result.previous_size}"
            if result.previous_size is not None
            else ""
        )
        + (f"; {extra} later events are not covered by it" if extra > 0 else "")
        + "."
    )


@audit_app.command("export")
def export_command(
    output: Annotated[Path | None, typer.Option(help="File to write (default: stdout).")] = None,
    format: Annotated[str, typer.Option(help="jsonl or csv.")] = "jsonl",
) -> None:
    """Export every event from the local database (JSON Lines verifies offline)."""
    from hub.api.audit import csv_lines, jsonl_lines
    from hub.audit.ledger import iter_export

    if format not in ("jsonl", "csv"):
        err_console.print("--format is jsonl or csv.")
        raise typer.Exit(2)
    if output is not None:
        _check_folder_for(output)
    hub = _local_hub("export")
    lines = (jsonl_lines if format == "jsonl" else csv_lines)(iter_export(hub.engine))
    if output is None:
        for line in lines:
            sys.stdout.write(line)
        return
    with output.open("w", encoding="utf-8", newline="") as handle:
        handle.writelines(lines)
    err_console.print(f"Wrote {output}.")


@audit_app.command("checkpoint")
def checkpoint_command(
    output: Annotated[Path | None, typer.Option(help="Also write the note here.")] = None,
) -> None:
    """Sign a checkpoint of the log as it is now and print it (a C2SP signed note)."""
    from hub.audit.ledger import make_checkpoint

    if output is not None:
        _check_folder_for(output)
    hub = _local_hub("checkpoint")
    stored = make_checkpoint(hub.engine, _signer("checkpoint"))
    if output is not None:
        output.write_text(stored.note)
    sys.stdout.write(stored.note)


@audit_app.command("key")
def key_command() -> None:
    """Print the verifier key that checks checkpoints (as GET /v1/audit/key)."""
    sys.stdout.write(_signer("key").verifier_key() + "\n")
