"""Byte streams for uploads: hashing and size limits while the file flows through.

An extract is never written to disk by the hub (it holds raw identifiers): it is read once,
as a stream, and its SHA-256 is computed on the way so that the receipt can name the file.
"""

from __future__ import annotations

import hashlib
import io
from typing import BinaryIO

from hub.errors import PayloadTooLarge


class HashingReader(io.RawIOBase):
    """Reads ``source`` while hashing it, refusing to read more than ``limit`` bytes."""

    def __init__(self, source: BinaryIO, limit: int) -> None:
        self._source = source
        self._limit = limit
        self._hash = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        readinto = getattr(self._source, "readinto", None)
        if readinto is not None:
            # Straight into the caller's buffer: no intermediate bytes object per read.
            count = readinto(buffer) or 0
            view = memoryview(buffer)[:count]
        else:
            chunk = self._source.read(len(buffer))
            count = len(chunk)
            buffer[:count] = chunk
            view = memoryview(buffer)[:count]
        if not count:
            return 0
        self.size += count
        if self.size > self._limit:
            raise PayloadTooLarge(
                "file_too_large",
                f"The file is larger than this hub accepts ({self._limit:,} bytes). "
                "Split the extract by month and upload each part.",
            )
        self._hash.update(view)
        return count

    def drain(self) -> None:
        """Read what is left so that the hash covers the whole file."""
        while self.read(1 << 20):
            pass

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def needs_random_access(filename: str) -> bool:
    """Spreadsheets and Parquet are zip/footer formats: they must be read whole (in memory)."""
    return filename.lower().endswith((".xlsx", ".parquet"))
