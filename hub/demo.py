"""``hub demo``: a working hub on SQLite in one command.

It creates what a real deployment would get from its operators (a master secret, the parties'
signing keys), signs and registers the example agreements, generates synthetic extracts for
the six agencies and uploads them, then serves the API. Running it again reuses everything:
agreements and uploads are idempotent.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.table import Table

from agreements import example_paths, load_agreement, sign
from agreements.signing import key_id_for
from hub.services import Hub, build_hub
from hub.settings import Settings
from privacy.secrets import generate_master_secret

DEMO_AGREEMENT = "london-vru-partnership"
# The example agreement runs from January 2026; a demo year of events ends last month.
DEMO_START = date(2026, 1, 1)
DEMO_MONTHS = 10


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _replace_private(path: Path, data: bytes) -> None:
    """Rewrite a private file whole: a new file (mode 0600) renamed over the old one."""
    fresh = path.with_name(path.name + ".new")
    fresh.unlink(missing_ok=True)
    _write_private(fresh, data)
    os.replace(fresh, path)


def ensure_master_secret(settings: Settings) -> Settings:
    """Use the operator's secret if configured; otherwise create the demo's own file."""
    if settings.master_secret or settings.master_secret_file or settings.master_secret_command:
        return settings
    path = settings.demo_master_secret_file
    if not path.exists():
        _write_private(path, (generate_master_secret() + "\n").encode())
    return settings.model_copy(update={"master_secret_file": path})


def _party_key(keys_dir: Path, party: str) -> Ed25519PrivateKey:
    path = keys_dir / f"{party}.pem"
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, Ed25519PrivateKey)
        return key
    key = Ed25519PrivateKey.generate()
    _write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return key


def register_examples(hub: Hub, keys_dir: Path) -> list[str]:
    """Sign every example agreement as all of its parties and register it."""
    trusted = hub.agreements.trusted_signers()
    signed_documents = []
    for path in example_paths():
        agreement = load_agreement(path)
        for party in agreement.parties:
            key = _party_key(keys_dir, party.id)
            key_id = key_id_for(key.public_key())
            if key_id not in trusted:
                trusted.add(key_id, party.id, key.public_key())
            agreement = sign(agreement, key, party.id, key_id, datetime.now(UTC))
        signed_documents.append((path.name, agreement))
    trusted.save(hub.settings.resolved_trusted_signers_file)
    registered = []
    for name, agreement in signed_documents:
        data = json.dumps(agreement.model_dump(mode="json")).encode()
        summary = hub.agreements.register(data, source=name, format="json")
        registered.append(f"{summary['id']} ({summary['status']})")
    return registered


def write_demo_credentials(hub: Hub) -> Path:
    """Create one real OAuth client per demo role and organisation; write ids and secrets.

    The file (mode 0600) is the only place the secrets are kept: the database holds their
    scrypt hashes. Running the demo again reuses the file and the clients in it.
    """
    from hub.auth.clients import ClientStore

    path = hub.settings.data_dir / "demo-credentials.json"
    token_endpoint = hub.settings.issuer + "/oauth/token"
    if path.exists():
        # the same clients; the hub may now serve on another port (`hub demo --port`)
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("token_endpoint") != token_endpoint:
            document["token_endpoint"] = token_endpoint
            _replace_private(path, (json.dumps(document, indent=2) + "\n").encode())
        return path
    agreement = hub.agreements.get(DEMO_AGREEMENT)
    wanted = [("hub-operator", "hub_admin"), ("partnership", "ig_lead")]
    for party in agreement.parties:
        if party.has_role("provider"):
            wanted.append((party.id, "data_officer"))
        if party.has_role("recipient"):
            wanted.append((party.id, "analyst"))
        wanted.append((party.id, "ig_lead"))
    store = ClientStore(hub.engine)
    clients = []
    for organisation, role in wanted:
        client, secret = store.create(
            organisation=organisation, role=role, description="demo client"
        )
        clients.append(
            {
                "organisation": organisation,
                "role": role,
                "client_id": client.client_id,
                "client_secret": secret,
            }
        )
    document = {
        "note": "Demo OAuth clients. Use one as HUB_CLIENT_ID / HUB_CLIENT_SECRET with the hub "
        "CLI, or get a token: POST /oauth/token (grant_type=client_credentials, HTTP Basic).",
        "token_endpoint": token_endpoint,
        "clients": clients,
    }
    _write_private(path, (json.dumps(document, indent=2) + "\n").encode())
    return path


def run_demo(*, scale: float, serve: bool, port: int, console: Console) -> None:
    from synth import generate

    settings = ensure_master_secret(Settings())
    if "public_url" not in settings.model_fields_set:
        # the demo serves on 127.0.0.1:PORT: its token issuer, and the token endpoint written
        # to demo-credentials.json (which `hub demo-login` turns into HUB_URL), say that port
        settings = settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"})
    console.print(f"[bold]vru-hub demo[/] — data in {settings.data_dir.resolve()}")
    hub = build_hub(settings)
    registered = register_examples(hub, settings.data_dir / "demo-signing-keys")
    console.print("Agreements: " + ", ".join(registered))

    extracts_dir = settings.data_dir / "demo-extracts"
    summary = generate(extracts_dir, scale=scale, seed=2026, start=DEMO_START, months=DEMO_MONTHS)
    agreement = hub.agreements.active_for_upload(DEMO_AGREEMENT, "police_violence_offences")
    table = Table("dataset", "rows read", "accepted", "rejected", "upload id", title="Demo uploads")
    for dataset, path in summary.files.items():
        with path.open("rb") as handle:
            receipt = hub.ingestor.ingest(
                handle, filename=path.name, agreement=agreement, dataset=dataset
            )
        hub.linkage.link_upload(receipt["upload_id"])  # issue 4: link after the upload commits
        table.add_row(
            dataset,
            f"{receipt['rows_read']:,}",
            f"{receipt['rows_accepted']:,}",
            f"{receipt['rows_rejected']:,}",
            receipt["upload_id"],
        )
    console.print(table)
    credentials = write_demo_credentials(hub)
    console.print(
        f"Demo clients (ids and secrets, one per role and organisation) are in {credentials}"
    )
    if not serve:
        return
    import uvicorn

    from hub.api.app import create_app
    from hub.logs import configure_logging

    configure_logging()
    console.print(f"Serving on http://127.0.0.1:{port} — API docs at http://127.0.0.1:{port}/docs")
    uvicorn.run(create_app(hub=hub), host="127.0.0.1", port=port, log_config=None)
