"""``gantry logs``: a job's stdout or stderr, read in pages or followed live."""

from __future__ import annotations

from typing import Annotated

import typer

from gantry.cli import render
from gantry.cli.errors import INTERRUPTED, guarded
from gantry.cli.runtime import Runtime
from gantry.client.jobs import LogStream


@guarded
def logs(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="ID")],
    stderr: Annotated[
        bool, typer.Option("--stderr", help="The job's stderr instead of stdout.")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")
    ] = False,
    attempt: Annotated[
        int | None, typer.Option(min=1, help="An earlier attempt's log (default: the latest).")
    ] = None,
) -> None:
    """Print a job's log."""
    runtime: Runtime = ctx.obj
    which: LogStream = "stderr" if stderr else "stdout"
    with runtime.client() as api:
        read = api.follow_logs if follow else api.iter_logs
        try:
            for text in read(job_id, stream=which, attempt=attempt):
                render.write_raw(text)
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED) from None
