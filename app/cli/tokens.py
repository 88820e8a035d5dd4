"""``gantry token``: API tokens, made and revoked on the database directly.

Local on purpose: the first token cannot be made over an API that needs one.
The server notices new and revoked tokens within a few seconds.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gantry.cli import render
from gantry.cli.db import DataDirOpt, database_url
from gantry.cli.errors import USAGE, CliError, guarded

token_app = typer.Typer(
    help="API tokens (local; the server requires them once one exists).", no_args_is_help=True
)


@token_app.command("create")
@guarded
def create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. ci-runner.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", "-s", help="read, submit or admin (each includes the former)."),
    ],
    data_dir: DataDirOpt = None,
) -> None:
    """Make a token and print it once: it is stored only as a hash."""
    from sqlalchemy import create_engine

    from gantry import db
    from gantry.tokens import TokenError, create_token

    with database_url(data_dir) as url:
        db.upgrade(url)
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                token_id, token = create_token(conn, name, scope)
        except TokenError as exc:
            raise CliError(str(exc), USAGE) from None
        finally:
            engine.dispose()
    render.note(f"token {token_id} ({name}) made; it is shown only now:", "green")
    print(token)


@token_app.command("revoke")
@guarded
def revoke(
    token_id: Annotated[int, typer.Argument(help="The id `gantry token list` shows.")],
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a token; the server refuses it within seconds."""
    from sqlalchemy import create_engine

    from gantry.tokens import revoke_token

    with database_url(data_dir) as url:
        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                done = revoke_token(conn, token_id)
        finally:
            engine.dispose()
    if not done:
        raise CliError(f"token {token_id} does not exist or is already revoked")
    render.note(f"token {token_id} revoked", "green")


@token_app.command("list")
@guarded
def list_(data_dir: DataDirOpt = None) -> None:
    """Every token: id, name, scopes, when made, whether revoked (never the secret)."""
    from sqlalchemy import create_engine

    from gantry import db
    from gantry.tokens import list_tokens

    with database_url(data_dir) as url:
        db.upgrade(url)
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                tokens = list_tokens(conn)
        finally:
            engine.dispose()
    table = Table("id", "name", "scopes", "created", "revoked")
    for t in tokens:
        table.add_row(
            str(t.id),
            t.name,
            ",".join(t.scopes),
            str(t.created_at)[:19],
            str(t.revoked_at)[:19] if t.revoked_at else "",
        )
    render.out().print(table)
