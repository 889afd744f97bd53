"""Signed checkpoints at intervals, as well as on demand.

An IG lead who keeps checkpoints can later prove the log only grew. Checkpoints on demand alone
would leave long gaps on a quiet hub; this signs one every ``interval`` seconds whenever the log
has grown since the last one (a checkpoint of an unchanged log is not repeated).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from sqlalchemy import Engine

from hub.audit.ledger import NoteSigner, make_checkpoint
from hub.logs import describe_error

log = logging.getLogger("hub.audit")


async def checkpoint_every(interval: float, engine: Engine, signer: NoteSigner) -> None:
    while True:
        await anyio.sleep(interval)
        try:
            stored = await anyio.to_thread.run_sync(make_checkpoint, engine, signer)
            log.debug("audit checkpoint at size %d", stored.size)
        except Exception as error:  # keep checkpointing; the next interval tries again
            log.error("audit checkpoint failed: %s", describe_error(error))


@asynccontextmanager
async def periodic_checkpoints(
    interval: float, engine: Engine, signer: NoteSigner
) -> AsyncIterator[None]:
    """Run ``checkpoint_every`` for the lifetime of the block (not at all if interval <= 0)."""
    if interval <= 0:
        yield
        return
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(checkpoint_every, interval, engine, signer)
        yield
        tasks.cancel_scope.cancel()
