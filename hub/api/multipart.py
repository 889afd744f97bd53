"""Stream the ``file`` part of a multipart upload without ever writing it to disk.

Starlette's form parser spools large files to a temporary file; an extract holds raw
identifiers, which must never reach disk (DEVELOPERS.md, promise 1). This parser hands the
file part on chunk by chunk as it arrives, and the ingest thread pulls those chunks through
``ThreadPipe`` so that the body is read only as fast as it is processed (flat memory).
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from anyio.from_thread import run as run_in_event_loop
from anyio.lowlevel import EventLoopToken
from python_multipart.multipart import MultipartParser, parse_options_header

from hub.errors import BadRequest, UnsupportedMediaType

FILE_FIELD = "file"
# Bytes gathered per hop from the ingest thread into the event loop (a hop costs tens of µs;
# the network delivers the body in 64 KiB pieces).
_MIN_HOP_BYTES = 1 << 20


class MultipartFile:
    """The ``file`` field of a ``multipart/form-data`` body, read incrementally."""

    def __init__(self, body: AsyncIterator[bytes], content_type: str) -> None:
        media_type, options = parse_options_header(content_type)
        if media_type != b"multipart/form-data" or b"boundary" not in options:
            raise UnsupportedMediaType(
                "multipart_required",
                "Send the extract as multipart/form-data with the file in a field named 'file' "
                "(curl -F file=@extract.csv ...).",
            )
        self._body = body
        self._ready: deque[bytes] = deque()
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._in_file_part = False
        self._file_parts_seen = 0
        self._finished = False
        self.filename: str | None = None
        try:
            self._parser = self._new_parser(options[b"boundary"])
        except ValueError:  # FormParserError: a boundary longer than the parser accepts
            raise BadRequest(
                "malformed_multipart",
                "The multipart boundary is not valid (at most 256 characters); send the file "
                "with -F file=@extract.csv.",
            ) from None

    def _new_parser(self, boundary: bytes) -> MultipartParser:
        return MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            },
        )

    # Parser callbacks -------------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = b""
        self._header_value = b""

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._in_file_part = options.get(b"name") == FILE_FIELD.encode()
        if self._in_file_part:
            self._file_parts_seen += 1
            raw_name = options.get(b"filename", b"")
            self.filename = raw_name.decode("utf-8", "replace").replace("\\", "/").split("/")[-1]

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file_part and self._file_parts_seen == 1:
            self._ready.append(bytes(data[start:end]))

    def _on_part_end(self) -> None:
        self._in_file_part = False

    def _on_end(self) -> None:
        self._finished = True

    # Reading ----------------------------------------------------------------------------
    async def start(self) -> str:
        """Read until the file part begins; return its filename."""
        while self.filename is None:
            if not await self._feed():
                raise BadRequest(
                    "file_field_missing",
                    "The multipart body has no field named 'file'. Send the extract as "
                    "-F file=@extract.csv.",
                )
        if not self.filename:
            raise BadRequest(
                "filename_missing",
                "The 'file' field has no filename; the hub needs its extension "
                "(.csv, .xlsx or .parquet) to read it.",
            )
        return self.filename

    async def next_chunk(self) -> bytes:
        """The next piece of the file part, or b'' at its end."""
        while not self._ready:
            if self._file_parts_seen > 1:
                raise BadRequest("several_files", "Send one file per upload.")
            if not await self._feed():
                return b""
        return self._ready.popleft()

    async def read_up_to(self, size: int) -> bytes:
        """At least one chunk and up to about ``size`` bytes of the file part; b'' at its end.

        Gathers several body chunks per call, so a reader on another thread pays one
        thread-to-event-loop hop per ``size`` bytes rather than one per network read.
        """
        pieces: list[bytes] = []
        total = 0
        while total < size:
            piece = await self.next_chunk()
            if not piece:
                break
            pieces.append(piece)
            total += len(piece)
        return b"".join(pieces) if len(pieces) != 1 else pieces[0]

    async def _feed(self) -> bool:
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            if not self._finished:
                raise BadRequest(
                    "incomplete_body",
                    "The upload ended before the multipart body was complete; send it again.",
                ) from None
            return False
        try:
            self._parser.write(chunk)
        except Exception as error:  # python-multipart raises several error types; never echo them
            raise BadRequest(
                "malformed_multipart",
                "The multipart body is malformed; send the file with -F file=@extract.csv.",
            ) from error
        return True


class ThreadPipe(io.RawIOBase):
    """A blocking file-like view of ``MultipartFile``, for the ingest worker thread."""

    def __init__(self, source: MultipartFile, loop_token: EventLoopToken) -> None:
        # The token is needed because read() may be called from threads other than the
        # anyio worker thread that runs the ingest.
        self._source = source
        self._loop_token = loop_token
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pending:
            chunk = run_in_event_loop(
                self._source.read_up_to, max(len(buffer), _MIN_HOP_BYTES), token=self._loop_token
            )
            if not chunk:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size
