"""Thread stages for the ingest pipeline.

Reading and validating (polars), keying (polars-hash) and storing (SQLite, psycopg)
spend most of their time outside the GIL, so running each on its own thread keeps both cores
busy: batch n is stored while batch n+1 is keyed and batch n+2 is read. Queues are short, so
memory holds a few batches whatever the file size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")

_DONE = object()


class ThreadStage(Generic[Item]):
    """Calls ``work(item)`` on a worker thread for every submitted item, in order.

    A failure in ``work`` is re-raised on the submitting thread by the next ``submit`` or by
    ``close``; later items are then discarded, never half-processed.
    """

    def __init__(self, work: Callable[[Item], None], *, name: str, depth: int = 2) -> None:
        self._work = work
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._error is not None:
                continue  # keep draining so that submit() never blocks on a dead stage
            try:
                self._work(item)  # type: ignore[arg-type]
            except BaseException as error:
                self._error = error
            # not held while waiting for the next: a batch is several MB
            item = None

    def submit(self, item: Item) -> None:
        self._raise_if_failed()
        self._queue.put(item)

    def close(self) -> None:
        """Wait for every submitted item to be processed; re-raise a failure."""
        if self._thread.is_alive():
            self._queue.put(_DONE)
            self._thread.join()
        self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
