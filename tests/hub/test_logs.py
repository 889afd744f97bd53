"""Logged errors name their type and place, never their message (which may quote data)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from hub.api.errors import ContainErrors
from hub.logs import describe_error


def test_describe_error_omits_the_message() -> None:
    try:
        raise ValueError("Amara Okafor 9434765919")
    except ValueError as error:
        text = describe_error(error)
    assert text.startswith("ValueError at ")
    assert "test_logs.py" in text and "test_describe_error_omits_the_message" in text
    assert "Amara" not in text and "9434765919" not in text


def test_a_client_that_disconnects_mid_request_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def read_body(scope: Scope, receive: Receive, send: Send) -> None:
        await Request(scope, receive).body()  # raises ClientDisconnect

    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        messages.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/", "headers": []}
    with caplog.at_level(logging.INFO, logger="hub.api"):
        asyncio.run(ContainErrors(read_body)(scope, receive, send))
    assert messages == []  # no one to answer, and no 500
    assert [r.levelno for r in caplog.records if r.name == "hub.api"] == [logging.INFO]
