"""``hub audit``: export the log, sign a checkpoint, print the key, verify (offline or not).

Outside the ``hub.audit`` package, and importing it only inside the commands: the package
brings SQLAlchemy and the models (~0.2 s), which every other ``hub`` command (an upload, say)
would otherwise wait for at start.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console

if TYPE_CHECKING:
    from hub.audit.ledger import NoteSigner
    from hub.services import Hub

audit_app = typer.Typer(
    help="The audit log: export, checkpoint, key, verify.", no_args_is_help=True
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _local_hub() -> Hub:
    from hub.services import build_hub
    from hub.settings import Settings

    return build_hub(Settings())


def _signer(hub: Hub) -> NoteSigner:
    from hub.audit.ledger import NoteSigner

    settings = hub.settings
    return NoteSigner.from_key_file(settings.audit_origin, settings.signing_key_file)


def load_public_key(path: Path) -> tuple[str | None, Ed25519PublicKey]:
    """A C2SP verifier key (``name+hash+key``), a PEM public key, or a JWK's raw key."""
    from hub.audit import notes

    text = path.read_text().strip()
    if "+" in text and "\n" not in text and not text.startswith("-----"):
        name, key = notes.parse_verifier_key(text)
        return name, key
    if text.startswith("-----BEGIN"):
        pem_key = serialization.load_pem_public_key(text.encode())
        if not isinstance(pem_key, Ed25519PublicKey):
            raise notes.NoteError(f"{path} is not an Ed25519 public key")
        return None, pem_key
    raise notes.NoteError(f"{path} is neither a verifier key (name+hash+key) nor a PEM key")


@audit_app.command("verify")
def verify(
    export: Annotated[
        Path | None,
        typer.Argument(help="JSON Lines export (`hub audit export`, GET /v1/audit/export)."),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="The signed checkpoint (note) you kept.")
    ] = None,
    previous: Annotated[
        Path | None, typer.Option(help="An older checkpoint: the log must extend it.")
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(help="The hub's audit key: verifier key (GET /v1/audit/key) or PEM."),
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

    try:
        if database:
            hub = _local_hub()
            signer = _signer(hub)
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
        with export.open("rb") as lines:
            result = verify_export(
                lines,
                checkpoint.read_text(),
                key_name,
                key,
                origin=origin,
                previous_note=previous.read_text() if previous else None,
            )
    except VerificationFailed as failure:
        err_console.print(f"[bold red]FAILED[/] {failure}", highlight=False)
        raise typer.Exit(1) from None
    except notes.NoteError as error:
        err_console.print(f"[bold red]FAILED[/] public key: {error}", highlight=False)
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
    hub = _local_hub()
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

    hub = _local_hub()
    stored = make_checkpoint(hub.engine, _signer(hub))
    if output is not None:
        output.write_text(stored.note)
    sys.stdout.write(stored.note)


@audit_app.command("key")
def key_command() -> None:
    """Print the verifier key that checks checkpoints (as GET /v1/audit/key)."""
    sys.stdout.write(_signer(_local_hub()).verifier_key() + "\n")
