"""``gantry backends``: what the server has installed, what runs, and its health."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from gantry.cli import render
from gantry.cli.errors import guarded
from gantry.cli.runtime import Runtime


@guarded
def backends(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the server's backends with their option defaults."""
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        infos = api.backends()
    if as_json:
        render.print_json(infos)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("name", "running", "healthy", "message", "options"):
        table.add_column(column, overflow="fold")
    for info in infos:
        table.add_row(
            info.name,
            _yes_no(info.running),
            _yes_no(info.healthy),
            info.message,
            render.key_values(
                {k: "(none)" if v is None else v for k, v in info.option_defaults.items()}
            ),
        )
    render.out().print(table)


def _yes_no(value: bool | None) -> Text:
    if value is None:
        return Text("-", style="dim")
    return Text("yes", style="green") if value else Text("no", style="red")
