"""``gantry db``: the schema, migrated locally with alembic (the server does it too)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli import render
from app.cli.errors import FAILED, guarded
from app.cli.serve import load_settings

db_app = typer.Typer(help="Database schema (local: reads GANTRY_DATABASE_URL or the data dir).",
                     no_args_is_help=True)

DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", "-d", help="The server's data dir (default: GANTRY_DATA_DIR or ./var).")]


@db_app.command("upgrade")
@guarded
def upgrade(data_dir: DataDirOpt = None) -> None:
    """Migrate the database to the newest schema."""
    from app import db  # alembic and SQLAlchemy load only when needed

    url = load_settings(data_dir=data_dir).resolved_database_url
    _run(lambda: db.upgrade(url))
    _run(lambda: render.note(f"database at revision {db.current_revision(url)}", "green"))


@db_app.command("current")
@guarded
def current(data_dir: DataDirOpt = None) -> None:
    """Print the database's schema revision."""
    from app import db

    url = load_settings(data_dir=data_dir).resolved_database_url
    revision: list[str | None] = []
    _run(lambda: revision.append(db.current_revision(url)))
    print(revision[0] or "none (run `gantry db upgrade`)")


def _run(action: Callable[[], None]) -> None:
    ...
