"""Logging for the hub process.

Log lines name uploads, agreements, counts and codes; never a value from a file. Uvicorn's
access log keeps only the method, path and status (no query strings, no headers).
"""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
