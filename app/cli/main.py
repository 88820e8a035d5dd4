"""The ``gantry`` command: global options and the table of subcommands."""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

import typer

from gantry.cli import (
    backends,
    export,
    instrument_jobs,
    instruments,
    jobs,
    logs,
    serve,
    stats,
    submit,
    workflow,
)
from gantry.cli.config import config_app
from gantry.cli.db import db_app
from gantry.cli.runtime import Runtime
from gantry.cli.tokens import token_app
from gantry.client import DEFAULT_URL

app = typer.Typer(
    name="gantry",
    help="gantry: submit, follow and manage jobs of a gantry server.",
    no_args_is_help=True,
    # An unexpected error still shows a traceback, but never local variables (tokens).
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"gantry {version('gantry')}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option(envvar="GANTRY_URL", show_envvar=True, help="The gantry server.")
    ] = DEFAULT_URL,
    _: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    # Tests hand in a Runtime (with a mock transport) as the context's obj.
    runtime = ctx.obj if isinstance(ctx.obj, Runtime) else Runtime()
    runtime.url = url
    ctx.obj = runtime


app.command("serve")(serve.serve)
app.command("submit", cls=submit.SubmitCommand)(submit.submit)
app.command("submit-batch")(submit.submit_batch)
app.command("list")(jobs.list_jobs)
app.command("status", **workflow.STATUS_SETTINGS)(workflow.status)
app.command("run")(workflow.run)
app.command("show")(jobs.show)
app.command("events")(jobs.events)
app.command("cancel")(jobs.cancel)
app.command("stats")(stats.stats)
app.command("logs")(logs.logs)
app.command("backends")(backends.backends)
app.command("submit-instrument")(instrument_jobs.submit_instrument)
app.command("data")(instrument_jobs.data)
app.command("export")(export.export)
app.command("drivers")(instruments.drivers)
app.command("devices")(instruments.devices)
app.command("components")(instruments.components)
app.command("pipelines")(instruments.pipelines)
app.add_typer(instruments.component_app, name="component")
app.add_typer(instruments.pipeline_app, name="pipeline")
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")


def main() -> None:
    app()
