"""Logging for the hub process.

Log lines name uploads, agreements, counts and codes; never a value from a file. Uvicorn's
access log keeps only the method, path and status (no query strings, no headers).
"""

from __future__ import annotations

import logging
import sys
import traceback


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def describe_error(error: BaseException) -> str:
    """An exception's type and where it was raised, never its message.

    Messages may quote data (a cell value, SQL parameters), so logs carry only this.
    """
    frames = traceback.extract_tb(error.__traceback__)[-6:]
    where = " <- ".join(
        f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno} {frame.name}"
        for frame in reversed(frames)
    )
    return f"{type(error).__name__} at {where}"
