"""A small Python client for the hub's API, used by the CLI and by analysts' scripts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

DEFAULT_HUB_URL = "http://127.0.0.1:8000"


class HubAPIError(Exception):
    """The hub refused a request; ``code`` and ``message`` are the hub's own words."""

    def __init__(self, status_code: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status_code})")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details


class _ProgressFile:
    """Wraps a file so that every read reports the bytes sent so far."""

    def __init__(self, handle: IO[bytes], on_read: Callable[[bytes], None]) -> None:
        self._handle = handle
        self._on_read = on_read

    def fileno(self) -> int:
        # Lets httpx learn the size (so it sends Content-Length and the hub can refuse a file
        # over its limit before reading it).
        return self._handle.fileno()

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size)
        self._on_read(chunk)
        return chunk


class HubClient:
    def __init__(self, base_url: str = DEFAULT_HUB_URL, *, timeout: float = 600.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as error:
            raise HubAPIError(
                0,
                "hub_unreachable",
                f"Cannot reach the hub at {self._http.base_url} ({type(error).__name__}). "
                "Check --hub-url / HUB_URL and that the hub is running.",
            ) from None
        return self._json(response)

    def _json(self, response: httpx.Response) -> Any:
        if response.is_success:
            return response.json()
        try:
            error = response.json()["error"]
            raise HubAPIError(
                response.status_code, error["code"], error["message"], error.get("details")
            )
        except (ValueError, KeyError, TypeError):
            raise HubAPIError(response.status_code, "http_error", response.text[:200]) from None

    # Agreements --------------------------------------------------------------------------
    def list_agreements(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/agreements")  # type: ignore[no-any-return]

    def get_agreement(self, agreement_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/agreements/{agreement_id}")  # type: ignore[no-any-return]

    def agreement_odrl(self, agreement_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/agreements/{agreement_id}/odrl")  # type: ignore[no-any-return]

    def register_agreement(self, path: Path) -> dict[str, Any]:
        media = "application/json" if path.suffix.lower() == ".json" else "application/yaml"
        return self._request(  # type: ignore[no-any-return]
            "POST",
            "/v1/agreements",
            content=path.read_bytes(),
            headers={"content-type": media, "x-filename": path.name},
        )

    def suspend_agreement(self, agreement_id: str, reason: str) -> dict[str, Any]:
        return self._request(  # type: ignore[no-any-return]
            "POST", f"/v1/agreements/{agreement_id}/suspend", json={"reason": reason}
        )

    # Uploads -----------------------------------------------------------------------------
    def upload(
        self,
        path: Path,
        *,
        agreement_id: str,
        dataset: str,
        on_read: Callable[[bytes], None] | None = None,
    ) -> dict[str, Any]:
        with path.open("rb") as handle:
            body: Any = _ProgressFile(handle, on_read) if on_read else handle
            return self._request(  # type: ignore[no-any-return]
                "POST",
                f"/v1/agreements/{agreement_id}/datasets/{dataset}/uploads",
                files={"file": (path.name, body)},
            )

    def list_uploads(self, agreement_id: str, dataset: str) -> list[dict[str, Any]]:
        return self._request(  # type: ignore[no-any-return]
            "GET", f"/v1/agreements/{agreement_id}/datasets/{dataset}/uploads"
        )

    def get_upload(self, upload_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/uploads/{upload_id}")  # type: ignore[no-any-return]

    def withdraw_upload(self, upload_id: str, reason: str | None = None) -> dict[str, Any]:
        return self._request(  # type: ignore[no-any-return]
            "POST", f"/v1/uploads/{upload_id}/withdraw", json={"reason": reason}
        )
