"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import hub.audit.tables
import hub.auth.models  # noqa: F401
from hub.db import make_engine, upgrade_database
from hub.models import Base


def test_migrations_build_the_schema_the_models_describe(database_url: str) -> None:
    upgrade_database(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engine.dispose()
    assert differences == [], "a model and the migrations disagree: write a migration"
