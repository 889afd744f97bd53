"""The ``hub`` command: run the hub, upload extracts, manage agreements, generate test data."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from hub.audit_cli import audit_app
from hub.cli_errors import DEBUG_HELP, HubGroup, UserError, finite_number, load_settings
from hub.client import DEFAULT_HUB_URL, TOKEN_PATH, HubAPIError, HubClient

if TYPE_CHECKING:
    from agreements import Agreement

app = typer.Typer(
    cls=HubGroup,
    help="vru-hub: secure data sharing for violence reduction partnerships.",
    epilog=DEBUG_HELP,
    no_args_is_help=True,
    # Locals can hold secrets (a client secret, the master secret): never print them.
    pretty_exceptions_show_locals=False,
)
agreements_app = typer.Typer(
    help="Register, list, show, suspend and export agreements.", no_args_is_help=True
)
uploads_app = typer.Typer(help="List, show and withdraw uploads.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
secret_app = typer.Typer(help="Master secret.", no_args_is_help=True)
app.add_typer(agreements_app, name="agreements")
app.add_typer(uploads_app, name="uploads")
app.add_typer(db_app, name="db")
app.add_typer(secret_app, name="secret")
clients_app = typer.Typer(
    help="OAuth clients (run on the hub host: acts on the hub's database).", no_args_is_help=True
)
app.add_typer(clients_app, name="clients")
app.add_typer(audit_app, name="audit")

Result = TypeVar("Result")

console = Console()
err_console = Console(stderr=True)

HubURL = Annotated[str, typer.Option("--hub-url", envvar="HUB_URL", help="The hub's base URL.")]
ClientID = Annotated[
    str | None,
    typer.Option("--client-id", envvar="HUB_CLIENT_ID", help="Your OAuth client id."),
]
ClientSecret = Annotated[
    str | None,
    typer.Option(
        "--client-secret",
        envvar="HUB_CLIENT_SECRET",
        help="Your OAuth client secret (prefer the HUB_CLIENT_SECRET variable).",
        show_default=False,
    ),
]
Port = Annotated[
    int, typer.Option(envvar="HUB_PORT", min=1, max=65535, help="TCP port to serve on.")
]
Scale = Annotated[
    float,
    typer.Option(
        help="Synthetic data volume (1.0 = a London year in miniature).",
        callback=finite_number(above=0, example="0.1 or 1.0"),
    ),
]


def _client(
    hub_url: str, client_id: str | None = None, client_secret: str | None = None
) -> HubClient:
    if bool(client_id) != bool(client_secret):
        err_console.print(
            "[bold red]Give both[/] --client-id and --client-secret "
            "(or HUB_CLIENT_ID and HUB_CLIENT_SECRET)."
        )
        raise typer.Exit(2)
    return HubClient(hub_url, client_id=client_id, client_secret=client_secret)


def _call(
    hub_url: str,
    client_id: str | None,
    client_secret: str | None,
    request: Callable[[HubClient], Result],
) -> Result:
    """Run ``request`` against the hub; on refusal print the hub's reason and exit 1."""
    try:
        with _client(hub_url, client_id, client_secret) as client:
            return request(client)
    except HubAPIError as error:
        _fail(error)


def _fail(error: HubAPIError) -> NoReturn:
    where = f"HTTP {error.status_code}" if error.status_code else "no response"
    err_console.print(
        f"[bold red]Refused:[/] {escape(error.message)} [dim]({escape(error.code)}, {where})[/]"
    )
    # A refused token's message already says to check the client id and secret: say it once.
    if error.status_code == 401 and "HUB_CLIENT_ID" not in error.message:
        err_console.print(
            "Authenticate with --client-id and --client-secret (or HUB_CLIENT_ID and "
            "HUB_CLIENT_SECRET); the hub's operator creates clients with `hub clients create`."
        )
    if isinstance(error.details, list):
        for detail in error.details[:20]:
            err_console.print(f"  - {escape(_detail_text(detail))}")
    elif isinstance(error.details, dict) and error.details.get("errors"):
        _print_issues(error.details["errors"], err_console)
    raise typer.Exit(1)


def _add_row(table: Table, *cells: str) -> None:
    """A table row of text shown as given: Rich would read ``[...]`` in a cell (an agreement
    title, a filter value, a path) as markup, and crash on ``[/]``."""
    table.add_row(*(escape(cell) for cell in cells))


def _print_json(document: Any) -> None:
    console.print_json(json.dumps(document, default=str))


# Service ---------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="HUB_HOST")] = "127.0.0.1",
    port: Port = 8000,
) -> None:
    """Run the hub's API server."""
    import subprocess
    import sys

    import uvicorn

    from hub.api.app import create_app
    from hub.logs import configure_logging
    from hub.services import build_hub

    settings = load_settings()  # a bad HUB_* variable is named before anything starts
    configure_logging()
    # Migrations run in a child process: the migration machinery (~11 MB) then never sits in
    # the long-running API process, whose memory an upload must keep under 300 MB (issue 2).
    migrated = subprocess.run([sys.executable, "-m", "hub.cli", "db", "upgrade"], check=False)
    if migrated.returncode != 0:
        err_console.print("The database could not be migrated (see above); the hub did not start.")
        raise typer.Exit(1)
    hub = build_hub(settings, migrate=False)
    uvicorn.run(create_app(hub=hub), host=host, port=port, log_config=None)


@app.command()
def demo(
    scale: Scale = 1.0,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the API after loading.")
    ] = True,
    port: Port = 8000,
) -> None:
    """Set up the demo: keys, signed example agreements, synthetic extracts uploaded; then serve."""
    from hub.demo import run_demo

    load_settings()  # a bad HUB_* variable is named before anything is created
    run_demo(scale=scale, serve=serve_after, port=port, console=console)


@app.command()
def linker(
    interval: Annotated[
        float,
        typer.Option(
            help="Seconds between passes.", callback=finite_number(at_least=0, example="5")
        ),
    ] = 5.0,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
) -> None:
    """Link stored records into persons, as a process of its own (HUB_LINKAGE_IN_API=false)."""
    import time

    from hub.logs import configure_logging
    from hub.services import build_hub

    settings = load_settings(linkage_in_api=False)
    configure_logging()
    hub = build_hub(settings)
    while True:
        linked = hub.linkage.catch_up()
        if linked:
            console.print(f"linked {linked:,} records", markup=False)
        if once:
            return
        time.sleep(interval)


@app.command("demo-login")
def demo_login(
    organisation: Annotated[str, typer.Argument(help="e.g. met-police, mopac-vru, partnership")],
    role: Annotated[str, typer.Argument(help="data_officer, analyst, ig_lead or hub_admin")],
) -> None:
    """Print shell exports for one demo client (and the demo's HUB_URL):
    eval "$(hub demo-login met-police data_officer)"."""
    import shlex

    path = load_settings().data_dir / "demo-credentials.json"
    if not path.is_file():
        raise UserError(f"No {path}: run `make demo` (or `hub demo`) first.")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        clients = list(document["clients"])
        token_endpoint = document.get("token_endpoint")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise UserError(
            f"{path} is not a demo credentials file; delete it and run `hub demo` again."
        ) from None
    for client in clients:
        if (client["organisation"], client["role"]) == (organisation, role):
            if isinstance(token_endpoint, str) and token_endpoint.endswith(TOKEN_PATH):
                hub_url = token_endpoint.removesuffix(TOKEN_PATH)
                print(f"export HUB_URL={shlex.quote(hub_url)}")
            print(f"export HUB_CLIENT_ID={shlex.quote(client['client_id'])}")
            print(f"export HUB_CLIENT_SECRET={shlex.quote(client['client_secret'])}")
            return
    choices = ", ".join(sorted(f"{c['organisation']} {c['role']}" for c in clients))
    raise UserError(f"No demo client for {organisation} {role}. There are: {choices}.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (the hub also does this on start)."""
    from hub.db import upgrade_database

    settings = load_settings()
    upgrade_database(settings.resolved_database_url)
    console.print("Database is up to date.")


@secret_app.command("generate")
def secret_generate(
    output: Annotated[Path, typer.Argument(help="File to write (mode 0600); it must not exist.")],
) -> None:
    """Write a new random master secret to a file for HUB_MASTER_SECRET_FILE."""
    from privacy.secrets import generate_master_secret

    if output.is_dir():
        raise UserError(
            f"{output} is a folder; give the path of a new file in it, e.g. "
            f"{output / 'master-secret.key'}."
        )
    if output.exists() or output.is_symlink():
        raise UserError(
            f"{output} already exists and is never overwritten (pseudonyms made with the old "
            "secret would no longer link); give a new path, or move the old file away first."
        )
    _check_folder_for(output)
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserError(f"{output} was created meanwhile; give a new path.") from None
    except OSError as error:
        raise UserError(
            f"cannot create {output} ({error.strerror}); give a path you can write to."
        ) from None
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_master_secret() + "\n")
    console.print(
        f"Wrote {output}. Keep it out of the database and out of version control; "
        f"point the hub at it with HUB_MASTER_SECRET_FILE={output}.",
        markup=False,
    )


@app.command()
def synth(
    out_dir: Annotated[
        Path, typer.Argument(help="Folder for the six extracts and the ground truth.")
    ],
    scale: Scale = 1.0,
    seed: Annotated[
        int, typer.Option(help="Random seed; the same seed gives the same files.")
    ] = 2026,
) -> None:
    """Generate synthetic extracts for the six agencies, with linkage ground truth."""
    from synth import generate

    # Before the (long) generation, not after it: the folder must be usable.
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file, not a folder; give a folder for the extracts.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(
            f"cannot create the folder {out_dir} ({error.strerror}); give a folder you can "
            "write to."
        ) from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UserError(f"cannot write in {out_dir}; give a folder you can write to.")
    summary = generate(out_dir, scale=scale, seed=seed)
    table = Table("dataset", "rows", "file")
    for dataset, path in summary.files.items():
        _add_row(table, dataset, f"{summary.rows[dataset]:,}", str(path))
    console.print(table)
    console.print(f"Ground truth: {summary.ground_truth}", markup=False)


# Uploads ---------------------------------------------------------------------------------
@app.command()
def upload(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="The extract (.csv, .xlsx, .parquet)."
        ),
    ],
    agreement: Annotated[str, typer.Option(help="The agreement the extract is shared under.")],
    dataset: Annotated[str, typer.Option(help="The dataset, e.g. police_violence_offences.")],
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the signed receipt as JSON.")
    ] = False,
) -> None:
    """Upload one extract and print its receipt."""
    size = file.stat().st_size
    bytes_sent = 0
    bytes_per_row = 0.0  # from the first chunk: counting every chunk's lines costs more CPU
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("{task.fields[rows]} rows"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"Uploading {file.name}", total=size, rows="~0")

        def on_read(chunk: bytes) -> None:
            nonlocal bytes_sent, bytes_per_row
            if not bytes_per_row and chunk:
                bytes_per_row = len(chunk) / max(chunk.count(b"\n"), 1)
            bytes_sent += len(chunk)
            rows = int(bytes_sent / bytes_per_row) if bytes_per_row else 0
            progress.update(task, advance=len(chunk), rows=f"~{rows:,}")
            if progress.tasks[0].completed >= size:
                progress.update(task, description="Hub is finishing (validating, hashing, storing)")

        try:
            with _client(hub_url, client_id, client_secret) as client:
                receipt = client.upload(
                    file, agreement_id=agreement, dataset=dataset, on_read=on_read
                )
        except HubAPIError as error:
            progress.stop()
            _fail(error)
    if json_output:
        _print_json(receipt)
        return
    _print_receipt(receipt)


def _detail_text(detail: Any) -> str:
    """One problem of a refusal, with the field it concerns: ``epsilon: must be at least ...``.
    (pydantic starts its messages with "Value error, ", which says nothing to a user.)"""
    if not isinstance(detail, dict):
        return str(detail)
    message = str(detail.get("message", detail)).removeprefix("Value error, ")
    field = detail.get("field") or detail.get("column")
    return f"{field}: {message}" if field and field != "body" else message


def _print_receipt(receipt: dict[str, Any]) -> None:
    table = Table(show_header=False, title="Upload receipt")
    for key in (
        "upload_id",
        "status",
        "agreement_id",
        "dataset",
        "sha256",
        "rows_read",
        "rows_accepted",
        "rows_rejected",
        "received_at",
    ):
        value = receipt.get(key)
        _add_row(table, key, f"{value:,}" if isinstance(value, int) else str(value))
    console.print(table)
    counts = receipt.get("issue_counts") or {}
    if counts:
        console.print(
            "Issues by kind: " + ", ".join(f"{code} × {n:,}" for code, n in counts.items()),
            markup=False,
        )
    _print_issues(receipt.get("errors") or [], console, limit=20)
    if receipt.get("rows_rejected"):
        # Sending the corrected whole file as well would store its good rows twice.
        console.print(
            f"[yellow]{receipt['rows_rejected']:,} rows were not stored.[/] To send a corrected "
            f"file instead, withdraw this upload first (hub uploads withdraw "
            f"{escape(receipt['upload_id'])}), or send a file with only the corrected rows."
        )
    signature = receipt.get("signature") or {}
    console.print(
        f"[dim]Signed by the hub (Ed25519, key {escape(str(signature.get('key_id')))}). "
        "Keep the JSON (--json) as your proof of upload.[/]"
    )


def _print_issues(issues: list[dict[str, Any]], target: Console, limit: int = 20) -> None:
    if not issues:
        return
    table = Table(
        "row",
        "field",
        "severity",
        "code",
        "message",
        title=f"First {min(limit, len(issues))} row issues",
    )
    for issue in issues[:limit]:
        _add_row(
            table,
            str(issue["row"]),
            issue["field"],
            issue["severity"],
            issue["code"],
            issue["message"],
        )
    target.print(table)


@uploads_app.command("list")
def uploads_list(
    agreement: Annotated[str, typer.Option()],
    dataset: Annotated[str, typer.Option()],
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """List the uploads to one dataset under one agreement."""
    receipts = _call(
        hub_url, client_id, client_secret, lambda client: client.list_uploads(agreement, dataset)
    )
    table = Table("status", "accepted", "rejected", "received", "sha256")
    table.add_column("upload_id", no_wrap=True, min_width=36)
    for r in receipts:
        _add_row(
            table,
            r["status"],
            f"{r['rows_accepted']:,}",
            f"{r['rows_rejected']:,}",
            r["received_at"][:10],
            r["sha256"][:8],
            r["upload_id"],
        )
    console.print(table)


@uploads_app.command("show")
def uploads_show(
    upload_id: str,
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """Print an upload's signed receipt."""
    _print_json(
        _call(hub_url, client_id, client_secret, lambda client: client.get_upload(upload_id))
    )


@uploads_app.command("withdraw")
def uploads_withdraw(
    upload_id: str,
    reason: Annotated[str | None, typer.Option(help="Why (kept with the receipt).")] = None,
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """Withdraw an upload: every one of its rows is deleted."""
    receipt = _call(
        hub_url, client_id, client_secret, lambda client: client.withdraw_upload(upload_id, reason)
    )
    console.print(
        f"Upload {receipt['upload_id']} withdrawn at {receipt.get('withdrawn_at')}; "
        f"{receipt['rows_accepted']:,} rows deleted.",
        markup=False,
    )


# Agreements ------------------------------------------------------------------------------
@agreements_app.command("register")
def agreements_register(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Signed agreement (.yaml or .json).")
    ],
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """Register a signed agreement with the hub."""
    summary = _call(
        hub_url, client_id, client_secret, lambda client: client.register_agreement(file)
    )
    console.print(
        f"Registered {summary['id']} v{summary['version']} ({summary['status']}).", markup=False
    )


@agreements_app.command("list")
def agreements_list(
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """List the agreements the hub holds and their status today."""
    summaries = _call(hub_url, client_id, client_secret, lambda client: client.list_agreements())
    table = Table("version", "status", "valid", "datasets")
    table.add_column("id", no_wrap=True)
    for s in summaries:
        _add_row(
            table,
            str(s["version"]),
            s["status"],
            f"{s['valid_from']} → {s['valid_until']}",
            str(len(s["datasets"])),
            s["id"],
        )
    console.print(table)


@agreements_app.command("show")
def agreements_show(
    agreement_id: str,
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """Show one agreement's summary."""
    _print_json(
        _call(hub_url, client_id, client_secret, lambda client: client.get_agreement(agreement_id))
    )


@agreements_app.command("suspend")
def agreements_suspend(
    agreement_id: str,
    reason: Annotated[str, typer.Option(help="Why (recorded with the agreement).")],
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """Suspend an agreement: no upload or query is accepted under it."""
    summary = _call(
        hub_url,
        client_id,
        client_secret,
        lambda client: client.suspend_agreement(agreement_id, reason),
    )
    console.print(f"{summary['id']} is now {summary['status']}.", markup=False)


@agreements_app.command("odrl")
def agreements_odrl(
    agreement_id: str,
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """Print an agreement as W3C ODRL 2.2 JSON-LD."""
    _print_json(
        _call(hub_url, client_id, client_secret, lambda client: client.agreement_odrl(agreement_id))
    )


@agreements_app.command("validate")
def agreements_validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
) -> None:
    """Check an agreement file offline: its schema and its fit with the extract layouts."""
    from agreements import AgreementError, check_against_layouts
    from hub.registry import extract_layouts

    agreement = _load_agreement(file)
    try:
        check_against_layouts(agreement, extract_layouts())
    except AgreementError as error:
        err_console.print(f"[bold red]Invalid:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(
        f"{file}: valid ({agreement.id} v{agreement.version}, {len(agreement.datasets)} datasets).",
        markup=False,
    )


@agreements_app.command("sign")
def agreements_sign(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="Agreement to sign (.yaml or .json)."),
    ],
    key: Annotated[
        Path,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="The signer's Ed25519 private key (PEM).",
        ),
    ],
    party: Annotated[str, typer.Option(help="The signing party's id in the agreement.")],
    output: Annotated[
        Path, typer.Option(dir_okay=False, help="Where to write the signed agreement (JSON).")
    ],
) -> None:
    """Sign an agreement as one party (Ed25519 over its RFC 8785 canonical form)."""
    from datetime import UTC, datetime

    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agreements import sign
    from agreements.signing import key_id_for

    _check_folder_for(output)
    agreement = _load_agreement(file)
    parties = [p.id for p in agreement.parties]
    if party not in parties:
        raise UserError(
            f"{party!r} is not a party to {agreement.id}; --party is one of: {', '.join(parties)}."
        )
    expected = (
        "an unencrypted Ed25519 private key in PEM (e.g. from `openssl genpkey -algorithm ed25519`)"
    )
    try:
        private_key = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except TypeError:  # the key is encrypted
        raise UserError(f"{key} is encrypted; --key needs {expected}.") from None
    except (ValueError, UnsupportedAlgorithm):
        raise UserError(f"{key} is not a PEM private key; --key needs {expected}.") from None
    if not isinstance(private_key, Ed25519PrivateKey):
        raise UserError(f"{key} is not an Ed25519 private key; --key needs {expected}.")
    signed = sign(
        agreement,
        private_key,
        party,
        key_id_for(private_key.public_key()),
        datetime.now(UTC),
    )
    try:
        output.write_text(json.dumps(signed.model_dump(mode="json"), indent=2) + "\n")
    except OSError as error:
        raise UserError(
            f"cannot write {output} ({error.strerror}); give an --output path you can write to."
        ) from None
    console.print(f"Signed as {party}; wrote {output}.", markup=False)


def _load_agreement(file: Path) -> Agreement:
    """Load an agreement file; a problem with it is reported as ``Invalid: ...`` (exit 1)."""
    from agreements import AgreementError, load_agreement

    try:
        return load_agreement(file)
    except AgreementError as error:
        err_console.print(f"[bold red]Invalid:[/] {escape(str(error))}", soft_wrap=True)
        raise typer.Exit(1) from None
    except RecursionError:
        # json/yaml recurse per level of nesting; an agreement is a few levels deep.
        err_console.print(
            f"[bold red]Invalid:[/] {escape(file.name)}: nested too deeply to be an agreement "
            "(an agreement is a mapping a few levels deep); check that this is the right file.",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None


def _check_folder_for(output: Path) -> None:
    """Refuse up front a file path whose folder does not exist (before any work is done)."""
    folder = output.parent
    if not folder.is_dir():
        raise UserError(
            f"the folder {folder} does not exist; create it first (mkdir -p {folder}) or give "
            "another path."
        )


# Clients ---------------------------------------------------------------------------------
def _client_store() -> Any:
    from hub.auth.clients import ClientStore
    from hub.db import make_engine, upgrade_database

    url = load_settings().resolved_database_url
    upgrade_database(url)
    return ClientStore(make_engine(url))


def _hub_error(error: Exception) -> None:
    from hub.errors import HubError

    if isinstance(error, HubError):
        err_console.print(
            f"[bold red]Refused:[/] {escape(error.message)} [dim]({escape(error.code)})[/]"
        )
        raise typer.Exit(1)
    raise error


@clients_app.command("create")
def clients_create(
    org: Annotated[str, typer.Option("--org", help="The organisation's party id.")],
    role: Annotated[str, typer.Option(help="data_officer, analyst, ig_lead or hub_admin.")],
    description: Annotated[str | None, typer.Option(help="What this client is for.")] = None,
    public_jwk: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="Public JWK file for private_key_jwt (RFC 7523)."
        ),
    ] = None,
    secret: Annotated[
        bool, typer.Option("--secret/--no-secret", help="Issue a client secret.")
    ] = True,
) -> None:
    """Create a client; its secret is printed this once and never stored in clear."""
    jwk = None
    if public_jwk is not None:
        try:
            jwk = json.loads(public_jwk.read_text(encoding="utf-8"))
        except (ValueError, RecursionError):
            raise UserError(
                f"{public_jwk} is not a JSON Web Key; --public-jwk takes a JSON file such as "
                '{"kty": "OKP", "crv": "Ed25519", "x": "..."}.'
            ) from None
    try:
        client, client_secret = _client_store().create(
            organisation=org,
            role=role,
            description=description,
            public_jwk=jwk,
            with_secret=secret,
        )
    except Exception as error:
        _hub_error(error)
        return
    console.print(f"client_id:     {client.client_id}", markup=False)
    if client_secret:
        console.print(f"client_secret: {client_secret}", markup=False)
        console.print(
            "[bold]Store the secret now[/]: it is shown only this once. Give it to the client as "
            "HUB_CLIENT_ID / HUB_CLIENT_SECRET."
        )


@clients_app.command("revoke")
def clients_revoke(client_id: str) -> None:
    """Revoke a client: its live tokens stop working at once."""
    try:
        client = _client_store().revoke(client_id)
    except Exception as error:
        _hub_error(error)
        return
    console.print(
        f"{client.client_id} revoked at {client.revoked_at:%Y-%m-%d %H:%M:%S}.", markup=False
    )


@clients_app.command("list")
def clients_list() -> None:
    """List clients: id, organisation, role, when created and revoked (never secrets)."""
    table = Table("organisation", "role", "created", "revoked", "auth")
    table.add_column("client_id", no_wrap=True)
    for client in _client_store().list():
        view = client.public_view()
        _add_row(
            table,
            view["organisation"],
            view["role"],
            view["created_at"][:19],
            (view["revoked_at"] or "")[:19],
            ", ".join(m.removeprefix("client_secret_") for m in view["auth_methods"]),
            view["client_id"],
        )
    console.print(table)


# Queries ---------------------------------------------------------------------------------
def _query_body(
    agreement: str,
    dataset: str,
    measure: str,
    purpose: str | None,
    attribute: str | None,
    quantile: float | None,
    group_by: list[str] | None,
    filters: list[str] | None,
    linkage: list[str] | None,
    epsilon: float | None,
    half_width: float | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"agreement_id": agreement, "dataset": dataset, "measure": measure}
    if purpose:
        body["purpose"] = purpose
    for key, value in (
        ("attribute", attribute),
        ("quantile", quantile),
        ("epsilon", epsilon),
        ("target_half_width", half_width),
    ):
        if value is not None:
            body[key] = value
    if group_by:
        body["group_by"] = [d.strip() for item in group_by for d in item.split(",") if d.strip()]
    parsed = []
    for text in filters or []:
        dimension, sep, values = text.partition("=")
        if not sep or not values:
            err_console.print(
                f"[bold red]--filter needs DIMENSION=V1,V2[/], got {escape(repr(text))}"
            )
            raise typer.Exit(2)
        parsed.append(
            {"dimension": dimension.strip(), "values": [v.strip() for v in values.split(",")]}
        )
    if parsed:
        body["filters"] = parsed
    if linkage:
        try:
            body["linkage"] = [json.loads(text) for text in linkage]
        except (ValueError, RecursionError):
            err_console.print(
                "[bold red]--linkage takes a JSON object[/], e.g. "
                '\'{"dataset": "school_exclusions", "days_before": 730}\''
            )
            raise typer.Exit(2) from None
    return body


@app.command("query")
def query(
    agreement: Annotated[str, typer.Option("--agreement", help="Agreement id.")],
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset to count or measure.")],
    measure: Annotated[
        str,
        typer.Option(help="count_records, count_persons, sum, mean or quantile."),
    ] = "count_persons",
    purpose: Annotated[
        str | None, typer.Option(help="The agreement purpose this query serves.")
    ] = None,
    attribute: Annotated[
        str | None, typer.Option(help="Numeric attribute (sum/mean/quantile).")
    ] = None,
    quantile: Annotated[
        float | None,
        typer.Option(
            help="Quantile in (0, 1).", callback=finite_number(above=0, below=1, example="0.5")
        ),
    ] = None,
    group_by: Annotated[
        list[str] | None, typer.Option("--group-by", help="Dimension(s), repeat or comma-separate.")
    ] = None,
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="DIMENSION=V1,V2 (repeatable).")
    ] = None,
    linkage: Annotated[
        list[str] | None,
        typer.Option(
            "--linkage", help='JSON, e.g. {"dataset": "school_exclusions", "days_before": 730}.'
        ),
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(help="Privacy loss to spend.", callback=finite_number(above=0, example="0.2")),
    ] = None,
    half_width: Annotated[
        float | None,
        typer.Option(
            "--half-width",
            help="Target 95% half-width instead of epsilon.",
            callback=finite_number(above=0, example="10"),
        ),
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Show the accuracy/epsilon only; spend nothing.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole release as JSON.")
    ] = False,
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """Run a differentially-private query (or --preview it) and print the released table."""
    body = _query_body(
        agreement,
        dataset,
        measure,
        purpose,
        attribute,
        quantile,
        group_by,
        filters,
        linkage,
        epsilon,
        half_width,
    )
    if preview:
        answer = _call(hub_url, client_id, client_secret, lambda client: client.preview(**body))
        if as_json:
            _print_json(answer)
            return
        table = Table("bound (rows per person)", "epsilon", "95% half-width", title=answer["note"])
        for row in answer["by_bound"]:
            _add_row(
                table,
                str(row["bound"]),
                f"{row['epsilon']:.4g}" if "epsilon" in row else "-",
                f"{row['half_width']:.4g}"
                if row.get("half_width") is not None
                else row.get("error", "-"),
            )
        console.print(table)
        return
    release = _call(hub_url, client_id, client_secret, lambda client: client.run_query(body))
    if as_json:
        _print_json(release)
        return
    groups = list(release["group_by"])
    table = Table(*groups, "value", "95% interval", "suppressed")
    for cell in release["cells"]:
        interval = (
            f"[{cell['lower']:g}, {cell['upper']:g}]" if cell.get("lower") is not None else "-"
        )
        value = cell.get("value")
        _add_row(
            table,
            *[str(cell[g]) for g in groups],
            "-" if value is None else f"{value:g}",
            interval,
            "yes" if cell.get("suppressed") else "",
        )
    console.print(table)
    bound = release["contribution_bound"]
    left = release["budget"]
    stored = " (stored, nothing spent)" if release["repeated"] else ""
    console.print(
        f"release {release['release_id']}{stored}"
        f": {release['measure']}, epsilon {release['epsilon']:.4g} ({release['mechanism']}), "
        f"unit: {release['unit_of_privacy']}; bound {bound['rows_per_person']} rows per person "
        f"(chosen from histogram {bound['histogram_release_id']}, epsilon "
        f"{bound['histogram_epsilon']:.3g} once this period); budget left for {left['period']}: "
        f"{left['epsilon_remaining']:.4g} of {left['epsilon_cap']:g}",
        markup=False,
    )


@app.command("budgets")
def budgets(
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """Privacy budget spent and left this period by your organisation, per agreement."""
    rows = _call(hub_url, client_id, client_secret, lambda client: client.budgets())
    table = Table("agreement", "period", "spent", "left", "cap")
    for row in rows:
        _add_row(
            table,
            row["agreement_id"],
            row["period"],
            f"{row['epsilon_spent']:.4g}",
            f"{row['epsilon_remaining']:.4g}",
            f"{row['epsilon_cap']:g}",
        )
    console.print(table)


@app.command("linkage")
def linkage(
    agreement_id: Annotated[str, typer.Argument(help="e.g. london-vru-partnership")],
    hub_url: HubURL = DEFAULT_HUB_URL,
    client_id: ClientID = None,
    client_secret: ClientSecret = None,
) -> None:
    """How the agreement's records linked, per dataset: records joined to another at each
    level, records alone, records still waiting for the linker (counts only; IG leads)."""
    body = _call(hub_url, client_id, client_secret, lambda client: client.linkage(agreement_id))
    if not body.get("linkage_visible", True):
        table = Table("dataset", "records", "pending")
        for row in body["datasets"]:
            _add_row(table, row["dataset"], f"{row['records']:,}", f"{row['pending']:,}")
        console.print(table)
        console.print(
            "How records linked is shown to the partnership's information-governance lead "
            "only: an exact count would tell a party whether a person it uploads is known to "
            "another agency."
        )
        return
    levels = list(body["levels"])
    table = Table("dataset", "records", *(f"level {level}" for level in levels), "alone", "pending")
    for row in body["datasets"]:
        _add_row(
            table,
            row["dataset"],
            f"{row['records']:,}",
            *(f"{row['linked_by_level'][level]:,}" for level in levels),
            f"{row['unlinked']:,}",
            f"{row['pending']:,}",
        )
    console.print(table)
    for level, keys in body["levels"].items():
        console.print(f"level {level}: {', '.join(keys)}", markup=False)


if __name__ == "__main__":
    app()
