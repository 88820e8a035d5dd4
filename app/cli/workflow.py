"""gwf workflow files: ``gantry run workflow.py [TARGET...]`` and ``gantry status workflow.py``.

The workflow runs here, in the CLI's process, as under ``gwf run`` (its
relative paths are the file's directory's); the server gets one batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.table import Table

from gantry.cli import jobs, render, wait
from gantry.cli.errors import FAILED, USAGE, CliError, guarded
from gantry.cli.runtime import Runtime
from gantry.cli.submit import announce
from gantry.client import Client
from gantry.client.models import JobPublic, State
from gantry.workflows.load import LoadedWorkflow, WorkflowLoadError, load_workflow
from gantry.workflows.plan import plan_workflow, workflow_tag
from gantry.workflows.status import target_states

Opt = typer.Option
ACTIVE_STATES: list[State] = ["queued", "submitted", "running", "cancelling"]
GWF_COLOURS = {"shouldrun": "magenta", "submitted": "yellow", "running": "blue"}
GWF_COLOURS |= {"completed": "green", "failed": "red", "cancelled": "red"}
WorkflowArg = Annotated[
    str,
    typer.Argument(metavar="WORKFLOW.py[:NAME]", help="A gwf workflow file (default object: gwf)."),
]
TargetsArg = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="[TARGET]...", help="Targets to run (gwf's glob patterns); default: all."
    ),
]


def _load(spec: str) -> LoadedWorkflow:
    try:
        return load_workflow(spec)
    except WorkflowLoadError as exc:
        raise CliError(str(exc), USAGE) from None


def _tagged_jobs(api: Client, tag: str, states: list[State] | None = None) -> Iterator[JobPublic]:
    """Every job of the workflow, newest first."""
    before = None
    while True:
        page = api.jobs(tag=tag, state=states, limit=1000, before=before)
        yield from page.items
        before = page.next_before
        if before is None:
            return


def _newest_by_name(rows: Iterator[JobPublic]) -> dict[str, JobPublic]:
    newest: dict[str, JobPublic] = {}
    for row in rows:
        newest.setdefault(row.name, row)
    return newest


@guarded
def run(
    ctx: typer.Context,
    workflow: WorkflowArg,
    targets: TargetsArg = None,
    backend: Annotated[str | None, Opt("--backend", "-b", help="Default: the server's.")] = None,
    dry_run: Annotated[
        bool, Opt("--dry-run", "-d", help="Show what would run; submit nothing.")
    ] = False,
    no_wait: Annotated[bool, Opt("--no-wait", help="Submit and return; do not follow.")] = False,
) -> None:
    """Run a gwf workflow: one batch of the targets that should run, followed to the end."""
    runtime: Runtime = ctx.obj
    loaded = _load(workflow)
    with runtime.client() as api:
        tag = workflow_tag(loaded.path)
        active = {
            n: row.id for n, row in _newest_by_name(_tagged_jobs(api, tag, ACTIVE_STATES)).items()
        }
        try:
            plan = plan_workflow(loaded, targets or (), active=active, backend=backend)
        except WorkflowLoadError as exc:
            raise CliError(str(exc), USAGE) from None
        if plan.up_to_date:
            render.note(f"{len(plan.up_to_date)} targets are up to date", "dim")
        if plan.already_active:
            render.note(f"{len(plan.already_active)} targets are already submitted", "dim")
        if dry_run or not plan.jobs:
            for job in plan.jobs:
                print(f"would submit {job['name']}")
            if not plan.jobs:
                render.note("nothing to run", "dim")
            return
        answer = api.batch(plan.jobs)
        announce(answer)
        render.note(f"submitted {len(answer.jobs)} targets", "dim")
        if no_wait:
            return
        ended = wait.wait_for_batch(api, (job.id for job in answer.jobs))
    names = {job.id: job.name for job in answer.jobs}
    unsuccessful = [f"{names[i]} ({s})" for i, s in sorted(ended.items()) if s != "completed"]
    if unsuccessful:
        raise CliError(
            f"{len(unsuccessful)} targets did not complete: {', '.join(unsuccessful[:20])}"
        )
    render.note(f"all {len(ended)} targets completed", "green")


def workflow_status(
    ctx: typer.Context,
    workflow: WorkflowArg,
    targets: TargetsArg = None,
    as_json: Annotated[bool, Opt("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Each target's state, as `gwf status` shows it."""
    runtime: Runtime = ctx.obj
    loaded = _load(workflow)
    with runtime.client() as api:
        latest = _newest_by_name(_tagged_jobs(api, workflow_tag(loaded.path)))
    try:
        by_name = {name: job.model_dump() for name, job in latest.items()}
        rows = target_states(loaded, by_name, targets or ())
    except WorkflowLoadError as exc:
        raise CliError(str(exc), USAGE) from None
    if as_json:
        render.print_json([dataclasses.asdict(row) for row in rows])
        return
    table = Table("target", "status", "job", "done", box=None)
    for row in rows:
        colour = GWF_COLOURS.get(row.status, "")
        share = f"{row.done / row.total:.0%} [{row.done}/{row.total}]"
        table.add_row(row.name, f"[{colour}]{row.status}[/]", str(row.job_id or ""), share)
    render.out().print(table)


def _one(command: Any) -> typer.Typer:
    single = typer.Typer(add_completion=False)
    single.command()(command)
    return single


def is_workflow(argument: str) -> bool:
    return argument.partition(":")[0].endswith(".py")


STATUS_SETTINGS: dict[str, Any] = {
    "context_settings": {
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],
    },
    "add_help_option": False,
    "help": "Jobs by id (`status ID...`), newest jobs, or a gwf workflow's targets "
    "(`status workflow.py`).",
}


def status(ctx: typer.Context) -> None:
    """``status workflow.py`` shows targets; anything else is ``list``'s."""
    args = list(ctx.args)
    chosen = guarded(workflow_status) if args and is_workflow(args[0]) else jobs.list_jobs
    command = typer.main.get_command(_one(chosen))
    code = command.main(args, prog_name=ctx.command_path, obj=ctx.obj, standalone_mode=False)
    if isinstance(code, int) and code:
        raise typer.Exit(code)


__all__ = ["FAILED", "is_workflow", "run", "status"]
