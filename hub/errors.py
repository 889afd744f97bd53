"""Errors the hub reports to its callers.

Each carries an HTTP status, a stable machine-readable code and a message that says what went
wrong and what to do next. Messages never contain a value from an uploaded file.
"""

from __future__ import annotations

from typing import Any

from privacy.freetext import identifier_kinds


class HubError(Exception):
    status_code = 400

    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class BadRequest(HubError):
    status_code = 400


class NotFound(HubError):
    status_code = 404


class Conflict(HubError):
    status_code = 409


class PayloadTooLarge(HubError):
    status_code = 413


class UnsupportedMediaType(HubError):
    status_code = 415


class Unprocessable(HubError):
    status_code = 422


def refuse_identifiers(text: str | None, what: str) -> None:
    """Refuse free text (a reason, a description) that seems to hold an identifier: it would be
    stored, shown and audited (``privacy.freetext``). The error names the kinds found, never
    the text."""
    kinds = identifier_kinds(text) if text else []
    if kinds:
        raise Unprocessable(
            "identifier_in_text",
            f"The {what} seems to contain {' and '.join(kinds)}. It is stored and shown to "
            "others: describe the problem without personal details (no names, dates, NHS "
            "numbers, postcodes or reference numbers) and send it again.",
        )
