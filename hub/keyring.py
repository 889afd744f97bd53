"""The linkage keys: one pseudonymiser per linkage domain, derived from the master secret.

The master secret is read once at start from where the operator pointed (environment,
file or KMS command) and held only in memory; it is never written to the database.
"""

from __future__ import annotations

from hub.settings import Settings
from privacy.linkage.anchors import AnchorEncoder
from privacy.linkage.bloom import BloomEncoder
from privacy.matchkeys import Pseudonymiser
from privacy.secrets import MasterSecretError, load_master_secret


class MasterSecretMissing(ValueError):
    """No usable master secret is configured (a setting to fix: the CLI reports it in one
    line, as it does other bad settings)."""


def master_secret_from(settings: Settings) -> bytes:
    sources = {
        "value": settings.master_secret,
        "file": settings.master_secret_file,
        "command": settings.master_secret_command,
    }
    if not any(sources.values()) and settings.demo_master_secret_file.exists():
        # `hub demo` made this file; later `hub serve` runs on the same data dir reuse it.
        sources["file"] = settings.demo_master_secret_file
    if not any(sources.values()):
        raise MasterSecretMissing(
            "No master secret is configured. Set one of HUB_MASTER_SECRET_FILE (a file holding "
            "32+ random bytes as hex or base64), HUB_MASTER_SECRET_COMMAND (a command that "
            "prints it, e.g. a KMS decrypt) or HUB_MASTER_SECRET; `hub secret generate` makes "
            "one, and `hub demo` creates one for the demo."
        )
    try:
        return load_master_secret(**sources)  # type: ignore[arg-type]
    except MasterSecretError as error:
        raise MasterSecretMissing(str(error)) from None


class KeyRing:
    def __init__(self, master_secret: bytes, key_version: int) -> None:
        self._master_secret = master_secret
        self.key_version = key_version
        self._pseudonymisers: dict[str, Pseudonymiser] = {}
        self._anchor_encoders: dict[str, AnchorEncoder] = {}
        self._bloom_encoders: dict[str, BloomEncoder] = {}

    def pseudonymiser(self, linkage_domain: str) -> Pseudonymiser:
        if linkage_domain not in self._pseudonymisers:
            self._pseudonymisers[linkage_domain] = Pseudonymiser(
                self._master_secret, linkage_domain, self.key_version
            )
        return self._pseudonymisers[linkage_domain]

    def anchor_encoder(self, linkage_domain: str) -> AnchorEncoder:
        if linkage_domain not in self._anchor_encoders:
            self._anchor_encoders[linkage_domain] = AnchorEncoder(
                self._master_secret, linkage_domain, self.key_version
            )
        return self._anchor_encoders[linkage_domain]

    def bloom_encoder(self, linkage_domain: str) -> BloomEncoder:
        """One per domain for the life of the process: its cache of keyed bigram patterns
        stays warm from upload to upload."""
        if linkage_domain not in self._bloom_encoders:
            self._bloom_encoders[linkage_domain] = BloomEncoder(
                self._master_secret, linkage_domain, self.key_version
            )
        return self._bloom_encoders[linkage_domain]
