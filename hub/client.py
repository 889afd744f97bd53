"""A small Python client for the hub's API, used by the CLI and by analysts' scripts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx

DEFAULT_HUB_URL = "http://127.0.0.1:8000"
TOKEN_PATH = "/oauth/token"  # noqa: S105 (a path, not a secret)
# Fetch a new token this long before the current one expires.
REFRESH_MARGIN_SECONDS = 30


class HubAPIError(Exception):
    """The hub refused a request; ``code`` and ``message`` are the hub's own words."""

    def __init__(self, status_code: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{message} ({code}, HTTP {status_code})")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details


UPLOAD_CHUNK_BYTES = 1 << 20
"""Bytes an upload sends at a time. httpx asks for 64 KiB; every chunk costs the client and the
hub a fixed amount of work (framing, the multipart parser, a thread hand-off), so a 278 MB
extract sent 1 MiB at a time leaves both more CPU for the rows."""


class _UploadBody:
    """An extract file as an upload body: read 1 MiB at a time, each read reported to
    ``on_read`` (the CLI's progress bar) when given."""

    def __init__(self, handle: IO[bytes], on_read: Callable[[bytes], None] | None) -> None:
        self._handle = handle
        self._on_read = on_read

    def fileno(self) -> int:
        # Lets httpx learn the size (so it sends Content-Length and the hub can refuse a file
        # over its limit before reading it).
        return self._handle.fileno()

    def read(self, size: int = -1) -> bytes:
        chunk = self._handle.read(size if size < 0 else max(size, UPLOAD_CHUNK_BYTES))
        if self._on_read is not None:
            self._on_read(chunk)
        return chunk


class ClientCredentials(httpx.Auth):
    """OAuth 2.0 client credentials: a token from the hub's /oauth/token, renewed on expiry.

    The token is reused until shortly before it expires; a request refused with 401 (the
    token expired in flight, or the hub restarted with a new key) is retried once with a new
    token when its body can be sent again. The secret and tokens are never logged.
    """

    def __init__(
        self, token_url: str, client_id: str, client_secret: str, scope: str | None = None
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = client_secret
        self.scope = scope
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def _fetch(self) -> str:
        data = {"grant_type": "client_credentials"}
        if self.scope:
            data["scope"] = self.scope
        try:
            response = httpx.post(
                self.token_url, data=data, auth=(self.client_id, self._client_secret), timeout=30
            )
        except httpx.TransportError as error:
            raise HubAPIError(
                0,
                "hub_unreachable",
                f"Cannot reach the hub's token endpoint {self.token_url} "
                f"({type(error).__name__}). Check --hub-url / HUB_URL and that the hub is running.",
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            code = str(body.get("error", "token_refused"))
            reason = str(body.get("error_description", f"HTTP {response.status_code}"))
            # the hub's own description already says which credentials to check
            hint = (
                " (the CLI takes them as --client-id/--client-secret)"
                if "HUB_CLIENT_ID" in reason
                else " (check --client-id/--client-secret or HUB_CLIENT_ID/HUB_CLIENT_SECRET)"
            )
            raise HubAPIError(
                response.status_code, code, f"The hub refused a token: {reason}{hint}"
            )
        self._token = str(body["access_token"])
        self._expires_at = time.monotonic() + float(body.get("expires_in", 300))
        return self._token

    def token(self, *, renew: bool = False) -> str:
        with self._lock:
            fresh = time.monotonic() < self._expires_at - REFRESH_MARGIN_SECONDS
            if self._token is not None and fresh and not renew:
                return self._token
            return self._fetch()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        replayable = isinstance(request.stream, httpx.ByteStream)
        if response.status_code == 401 and replayable:
            request.headers["Authorization"] = f"Bearer {self.token(renew=True)}"
            yield request


class HubClient:
    def __init__(
        self,
        base_url: str = DEFAULT_HUB_URL,
        *,
        timeout: float = 600.0,
        client_id: str | None = None,
        client_secret: str | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        if auth is None and client_id and client_secret:
            auth = ClientCredentials(base_url.rstrip("/") + TOKEN_PATH, client_id, client_secret)
        self._http = httpx.Client(base_url=base_url, timeout=timeout, auth=auth)
        self.last_release: dict[str, Any] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        if "json" in kwargs:
            try:
                json.dumps(kwargs["json"], allow_nan=False)
            except ValueError:
                raise HubAPIError(
                    0,
                    "invalid_request",
                    "A number in the request is NaN or infinite, which JSON cannot carry: "
                    "give a finite number.",
                ) from None
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
            body = _UploadBody(handle, on_read)
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

    # Queries -----------------------------------------------------------------------------
    def run_query(self, query: dict[str, Any]) -> dict[str, Any]:
        """Run a query (the fields of ``privacy.dp.budget.Query`` plus ``purpose``) and return
        the whole release: cells, epsilon, mechanism, bound, budget left."""
        return self._request("POST", "/v1/queries", json=query)  # type: ignore[no-any-return]

    def query(self, **query: Any) -> Any:
        """Run a query and return its cells as a ``polars.DataFrame`` (one row per cell of the
        public key set: the groups, ``value``, ``lower``, ``upper``, ``half_width``,
        ``suppressed``). The release's metadata is in ``last_release``. For pandas, call
        ``.to_pandas()`` on the result (needs pandas installed)."""
        import polars as pl

        release = self.run_query(query)
        self.last_release = release
        return pl.DataFrame(release["cells"], infer_schema_length=None)

    def preview(self, **query: Any) -> dict[str, Any]:
        """The accuracy at the query's epsilon, or the epsilon for its target half-width, at
        each contribution bound; spends nothing."""
        return self._request("POST", "/v1/queries/preview", json=query)  # type: ignore[no-any-return]

    def budgets(self) -> list[dict[str, Any]]:
        """Epsilon spent and left this period by your organisation, per agreement."""
        return self._request("GET", "/v1/budgets")  # type: ignore[no-any-return]

    def linkage(self, agreement_id: str) -> dict[str, Any]:
        """Per dataset of an agreement: records linked at each level, unlinked and pending
        (counts only; IG leads)."""
        path = f"/v1/agreements/{quote(agreement_id, safe='')}/linkage"
        return self._request("GET", path)  # type: ignore[no-any-return]
