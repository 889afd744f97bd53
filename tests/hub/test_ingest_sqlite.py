"""SQLite specifics of large writes: the WAL checkpoint runs after the commit, off the caller's
path, and the connection goes back to the pool as it was."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from hub.db import checkpoint_in_background, large_write, make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
    yield engine
    engine.dispose()


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one())


def test_a_large_write_is_committed_and_leaves_the_connection_as_it_was(engine: Engine) -> None:
    before = _autocheckpoint(engine)
    with large_write(engine) as connection:
        connection.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": "x" * 500} for _ in range(5000)]
        )
    assert _autocheckpoint(engine) == before
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 5000


def test_a_failed_large_write_stores_nothing(engine: Engine) -> None:
    before = _autocheckpoint(engine)
    with pytest.raises(RuntimeError), large_write(engine) as connection:
        connection.execute(text("INSERT INTO t (v) VALUES ('a')"))
        raise RuntimeError("stop")
    assert _autocheckpoint(engine) == before
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 0


def test_the_background_checkpoint_moves_the_wal_into_the_database(
    engine: Engine, tmp_path: Path
) -> None:
    with large_write(engine) as connection:
        connection.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": "y" * 500} for _ in range(5000)]
        )
    checkpoint_in_background(engine).join()
    with engine.connect() as connection:
        busy, wal_frames, checkpointed = connection.exec_driver_sql(
            "PRAGMA wal_checkpoint(PASSIVE)"
        ).one()
    assert busy == 0
    assert wal_frames == checkpointed
    assert (tmp_path / "hub.db").stat().st_size > 5000 * 500
