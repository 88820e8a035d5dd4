"""``gantry logs``: a job's stdout or stderr, read in pages or followed live."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from gantry.cli import render
from gantry.cli.client import GantryClient, Runtime
from gantry.cli.errors import INTERRUPTED, CliError, guarded


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
    params: dict[str, Any] = {"stream": "stderr" if stderr else "stdout", "attempt": attempt}
    with runtime.client() as api:
        try:
            (_follow if follow else _read_all)(api, job_id, params)
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED) from None


def _read_all(api: GantryClient, job_id: int, params: dict[str, Any]) -> None:
    """Page through ``next_offset`` up to what the log holds now."""
    offset = 0
    while True:
        chunk = api.get(f"/jobs/{job_id}/logs", {**params, "offset": offset})
        render.write_raw(chunk["text"])
        offset = chunk["next_offset"]
        if chunk["complete"] or not chunk["text"] or offset >= chunk["size"]:
            return


def _follow(api: GantryClient, job_id: int, params: dict[str, Any]) -> None:
    with api.stream(f"/jobs/{job_id}/logs", {**params, "follow": True}) as events:
        for event in events:
            if event.event == "log":
                render.write_raw(event.data)
            elif event.event == "end":
                return
    raise CliError(
        f"the log stream ended before job {job_id} did: run `gantry logs -f {job_id}` again"
    )
