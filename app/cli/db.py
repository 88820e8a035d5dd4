"""``gantry db``: the schema, migrated locally with alembic (the server does it too)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from gantry.cli import render
from gantry.cli.errors import FAILED, CliError, guarded
from gantry.cli.serve import load_settings

db_app = typer.Typer(
    help="Database schema (local; GANTRY_DATABASE_URL or the data dir's SQLite file).",
    no_args_is_help=True,
)

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", "-d", help="The server's data dir (default: GANTRY_DATA_DIR or ./var)."
    ),
]


@contextmanager
def database_url(data_dir: Path | None) -> Iterator[str]:
    """The database URL; what alembic or the driver raise becomes one clear line."""
    # Imported here: alembic and SQLAlchemy load only for the commands that need them.
    from alembic.util.exc import CommandError
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    url = load_settings(data_dir=data_dir).resolved_database_url
    try:
        yield url
    except (SQLAlchemyError, CommandError, OSError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise CliError(f"database {shown}: {reason}", FAILED) from None


@db_app.command("upgrade")
@guarded
def upgrade(data_dir: DataDirOpt = None) -> None:
    """Migrate the database to the newest schema."""
    from gantry import db

    with database_url(data_dir) as url:
        db.upgrade(url)
        revision = db.current_revision(url)
    render.note(f"database at revision {revision}", "green")


@db_app.command("current")
@guarded
def current(data_dir: DataDirOpt = None) -> None:
    """Print the database's schema revision."""
    from gantry import db

    with database_url(data_dir) as url:
        revision = db.current_revision(url)
    print(revision or "none: run `gantry db upgrade`")
