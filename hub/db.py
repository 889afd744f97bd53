"""Database engine and schema migrations: the same code on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event

from hub.logs import describe_error

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

log = logging.getLogger("hub.db")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        # The upload writer thread uses the connection its transaction was opened on.
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers carry on while an upload holds the write lock; foreign keys are off
    # by default in SQLite and the schema relies on them.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


@contextmanager
def large_write(engine: Engine) -> Iterator[Connection]:
    """One transaction for a write of up to millions of rows; yields its connection.

    Committed when the block ends, rolled back if it raises. On SQLite the WAL checkpoint
    that the commit would otherwise run (copying every page just written from the WAL into the
    database, ~2.6 s at a million rows) is left to a background thread: the commit is durable
    once it is in the WAL, so the caller need not wait for the copy.
    """
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                yield connection
            return
        driver_connection: Any = connection.connection.driver_connection
        previous = int(driver_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        driver_connection.execute("PRAGMA wal_autocheckpoint = 0")
        try:
            with connection.begin():
                yield connection
        finally:
            driver_connection.execute(f"PRAGMA wal_autocheckpoint = {previous}")
    checkpoint_in_background(engine)


_checkpoint_lock = threading.Lock()


def checkpoint_in_background(engine: Engine) -> threading.Thread:
    """Copy committed WAL pages into the SQLite database file on a daemon thread.

    PASSIVE: readers and writers are never blocked; whatever a reader still needs is left for
    the next checkpoint (SQLite's automatic one after a later commit, or this one again).
    """
    thread = threading.Thread(
        target=_checkpoint, args=(engine,), name="hub-wal-checkpoint", daemon=True
    )
    thread.start()
    return thread


def _checkpoint(engine: Engine) -> None:
    with _checkpoint_lock:
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as error:  # the database may be gone (tests, shutdown): nothing lost
            log.warning("background WAL checkpoint failed: %s", describe_error(error))


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(url: str) -> None:
    """Bring the schema to the newest migration (safe to run on every start).

    Alembic is imported here, not at the top: it is ~11 MB resident, and ``hub serve`` runs
    this in a short-lived child process so that the API process never carries it.
    """
    from alembic import command

    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), "heads")
