"""Logged errors name their type and place, never their message (which may quote data)."""

from __future__ import annotations

from hub.logs import describe_error


def test_describe_error_omits_the_message() -> None:
    try:
        raise ValueError("Amara Okafor 9434765919")
    except ValueError as error:
        text = describe_error(error)
    assert text.startswith("ValueError at ")
    assert "test_logs.py" in text and "test_describe_error_omits_the_message" in text
    assert "Amara" not in text and "9434765919" not in text
