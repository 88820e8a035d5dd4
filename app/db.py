"""Database connection: one SQLAlchemy engine per server, built by ``create_app``.

SQLite gets WAL, a busy timeout and foreign keys on every connection;
PostgreSQL (``GANTRY_DATABASE_URL=postgresql+psycopg://...``) runs the same
code. The schema comes only from alembic (:func:`upgrade`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool, QueuePool

BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Run on every new connection: these are per-connection settings.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # NORMAL is durable across process crashes in WAL mode (only an OS crash
    # can lose the last commits), and it makes a commit cost no fsync.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; creates the SQLite file's directory if needed."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            poolclass=QueuePool,
            pool_size=8,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; issue BEGIN
        # IMMEDIATE for writes ourselves (see gantry.jobs.writer) to avoid
        # lock-upgrade deadlocks between concurrent writers.
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def migrations_dir() -> Path:
    """alembic's scripts: ``gantry/migrations`` when installed from a wheel,
    ``alembic/`` beside ``app/`` in a source checkout (an editable install)."""
    package = Path(__file__).resolve().parent
    for candidate in (package / "migrations", package.parent / "alembic"):
        if (candidate / "env.py").is_file():
            return candidate
    raise RuntimeError(f"gantry's migrations are missing next to {package}: reinstall gantry")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


#: PostgreSQL advisory lock held while migrating: servers starting together migrate one by one
MIGRATION_LOCK = 0x67616E74  # "gant"


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent; safe on every start)."""
    if url.startswith("sqlite"):
        make_engine(url).dispose()  # creates the directory
    if not url.startswith("postgresql"):
        command.upgrade(alembic_config(url), revision)
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            try:
                command.upgrade(alembic_config(url), revision)
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
