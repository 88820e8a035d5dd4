"""alembic owns the schema: the migrated database must equal the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

import gantry.models  # noqa: F401
from gantry import db


def test_migrations_produce_exactly_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent_and_downgrade_reverses_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.upgrade(url)
    db.upgrade(url)
    assert db.current_revision(url) is not None
    db.upgrade(url, "head")
    from alembic import command

    command.downgrade(db.alembic_config(url), "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == db.BUSY_TIMEOUT_MS
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
