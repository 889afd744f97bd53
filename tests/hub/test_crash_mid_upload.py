"""Proof of promise 6: a hub killed with SIGKILL in the middle of a large upload leaves no row
of that upload behind, and accepts the same file afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from hub.services import Hub
from synth import generate_police_extract
from tests.conftest import HubProcess, Tokens
from tests.hub.helpers import AGREEMENT, POLICE, stored_counts

BOUNDARY = "----vru-hub-test-boundary"


def multipart_body(path: Path, pause: threading.Event, after_bytes: int) -> Iterator[bytes]:
    """The file as a multipart body that stops sending after ``after_bytes`` until ``pause``."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{path.name}"\r\nContent-Type: text/csv\r\n\r\n'
    ).encode()
    sent = 0
    with path.open("rb") as handle:
        while chunk := handle.read(256 * 1024):
            yield chunk
            sent += len(chunk)
            if sent >= after_bytes:
                pause.wait(60)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_sigkill_mid_upload_leaves_no_partial_data(
    hub: Hub, hub_process: HubProcess, tmp_path: Path, tokens: Tokens
) -> None:
    extract = tmp_path / "police.csv"
    generate_police_extract(extract, 300_000, seed=11)
    size = extract.stat().st_size
    pause = threading.Event()
    outcome: dict[str, object] = {}

    def send() -> None:
        try:
            outcome["response"] = httpx.post(
                f"{hub_process.url}/v1/agreements/{AGREEMENT}/datasets/{POLICE}/uploads",
                content=multipart_body(extract, pause, after_bytes=size * 2 // 3),
                headers={
                    "content-type": f"multipart/form-data; boundary={BOUNDARY}",
                    **tokens.headers("data_officer", "met-police"),
                },
                timeout=120,
            )
        except httpx.HTTPError as error:
            outcome["error"] = error

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 120
    # Wait until the hub has stored at least one batch inside the upload's transaction.
    while "rows processed" not in hub_process.log_text():
        assert time.monotonic() < deadline, hub_process.log_text()
        assert sender.is_alive(), outcome
        time.sleep(0.05)
    hub_process.kill()
    pause.set()
    sender.join(60)
    assert "error" in outcome, "the upload cannot have succeeded: the hub was killed"

    restarted = HubProcess(hub.settings, tmp_path / "restarted.log")
    restarted.start()
    try:
        assert stored_counts(hub.engine) == (0, 0, 0)
        listed = httpx.get(
            f"{restarted.url}/v1/agreements/{AGREEMENT}/datasets/{POLICE}/uploads",
            headers=tokens.headers("data_officer", "met-police"),
        )
        assert listed.json() == []
        small = tmp_path / "police-small.csv"
        generate_police_extract(small, 1_000, seed=12)
        with small.open("rb") as handle:
            response = httpx.post(
                f"{restarted.url}/v1/agreements/{AGREEMENT}/datasets/{POLICE}/uploads",
                files={"file": (small.name, handle)},
                headers=tokens.headers("data_officer", "met-police"),
                timeout=60,
            )
        assert response.status_code == 201, response.text
        assert stored_counts(hub.engine)[1] == response.json()["rows_accepted"] > 0
    finally:
        restarted.stop()
