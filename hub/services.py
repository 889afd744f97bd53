"""Wire the hub together: one ``Hub`` per process, built from ``Settings``."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from hub.db import make_engine, upgrade_database
from hub.ingest import Ingestor
from hub.keyring import KeyRing, master_secret_from
from hub.linkage import LinkageService
from hub.registry import AgreementRegistry
from hub.settings import Settings
from hub.signing import HubSigner


@dataclass
class Hub:
    settings: Settings
    engine: Engine
    signer: HubSigner
    keyring: KeyRing
    agreements: AgreementRegistry
    ingestor: Ingestor
    linkage: LinkageService


def build_hub(settings: Settings, *, migrate: bool = True) -> Hub:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url
    if migrate:
        upgrade_database(url)
    engine = make_engine(url)
    signer = HubSigner.load_or_create(settings.signing_key_file)
    master_secret = master_secret_from(settings)
    keyring = KeyRing(master_secret, settings.key_version)
    agreements = AgreementRegistry(engine, settings.resolved_trusted_signers_file)
    ingestor = Ingestor(
        engine,
        keyring,
        signer,
        max_upload_bytes=settings.max_upload_bytes,
        max_report_issues=settings.max_report_issues,
        batch_rows=settings.ingest_batch_rows,
        name_clks=settings.ingest_name_clks,
    )
    linkage = LinkageService(engine, agreements, master_secret, settings.key_version)
    if settings.linkage_in_api:
        # Records stored but not linked (a crash between store and link) are linked now.
        linkage.catch_up()
    return Hub(settings, engine, signer, keyring, agreements, ingestor, linkage)
