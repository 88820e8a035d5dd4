"""Reading and steering jobs: ``list``/``status``, ``show``, ``events``, ``cancel``."""

from __future__ import annotations

from typing import Annotated, cast

import typer
from rich.table import Table
from rich.text import Text

from gantry.cli import render
from gantry.cli.errors import FAILED, guarded
from gantry.cli.runtime import Runtime
from gantry.cli.stats import accounting_text
from gantry.client import Conflict, NotFound
from gantry.client.models import (
    ArrayCounts,
    EventPublic,
    JobPublic,
    JobShown,
    JobsPage,
    State,
)

Opt = typer.Option
JsonOpt = Annotated[bool, Opt("--json", help="Print JSON instead of a table.")]
STATES = ("queued", "submitted", "running", "cancelling", "completed", "failed", "cancelled")


@guarded
def list_jobs(
    ctx: typer.Context,
    ids: Annotated[
        list[int] | None,
        typer.Argument(metavar="[ID]...", help="Show these jobs; without ids, the newest jobs."),
    ] = None,
    state: Annotated[
        list[str] | None, Opt("--state", "-s", help=f"One of {', '.join(STATES)}. Repeatable.")
    ] = None,
    backend: Annotated[str | None, Opt("--backend", "-b")] = None,
    name: Annotated[str | None, Opt("--name", "-n", help="Name prefix.")] = None,
    tag: Annotated[str | None, Opt("--tag", "-t")] = None,
    limit: Annotated[int, Opt("--limit", "-l", min=1, max=1000)] = 100,
    before: Annotated[
        int | None, Opt(metavar="ID", help="Only jobs older than this id (the next page).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """List jobs, newest first (`status ID...` shows those jobs)."""
    runtime: Runtime = ctx.obj
    missing = 0
    with runtime.client() as api:
        if ids:
            found: list[JobPublic] = []
            for job_id in ids:
                try:
                    found.append(api.job(job_id))
                except NotFound as exc:
                    render.error(exc.message)
                    missing += 1
            page = JobsPage(items=found, next_before=None)
        else:
            page = api.jobs(
                state=cast("list[State] | None", state),  # the server names a bad one
                backend=backend,
                name=name,
                tag=tag,
                limit=limit,
                before=before,
            )
    if as_json:
        render.print_json(page)
    elif page.items:
        render.out().print(render.jobs_table(page.items))
        if page.next_before:
            render.note(f"more: --before {page.next_before}", "dim")
    elif not ids:
        render.note("no jobs", "dim")
    if missing:
        raise typer.Exit(FAILED)


@guarded
def show(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="ID")],
    as_json: JsonOpt = False,
) -> None:
    """A job's details: state, spec, options, dependencies, warnings."""
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        job = api.job(job_id)
    if as_json:
        render.print_json(job)
        return
    console = render.out()
    console.print(details(job))
    if job.spec is not None:
        console.print(Text("spec:", style="bold"))
        render.write_raw(job.spec if job.spec.endswith("\n") else job.spec + "\n")


def details(job: JobShown) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    state = render.state_text(job.state)
    if job.exit_code is not None:
        state.append(f" (exit code {job.exit_code})")
    ref = f" (ref {job.backend_ref})" if job.backend_ref else ""
    rows: list[tuple[str, str | Text]] = [
        ("id", str(job.id)),
        ("name", job.name),
        ("state", state),
        ("reason", job.reason or "-"),
        ("backend", job.backend + ref),
        ("attempt", str(job.attempt)),
        ("priority", str(job.priority)),
        ("tags", ", ".join(job.tags) or "-"),
        ("depends on", ", ".join(map(str, job.depends_on)) or "-"),
        ("options", render.key_values(job.options)),
        ("env", render.key_values(job.env)),
        ("working dir", job.working_dir or "-"),
        ("inputs", ", ".join(job.inputs) or "-"),
        ("outputs", ", ".join(job.outputs) or "-"),
        ("created", render.local_time(job.created_at)),
        ("submitter", job.submitted_by or "-"),
        ("started", render.local_time(job.started_at)),
        ("ended", render.local_time(job.ended_at)),
        ("duration", render.duration(job)),
        ("accounting", accounting_text(job.accounting)),
    ]
    if job.array:
        rows.insert(3, ("array", _array_text(job.array, job.tasks)))
    for key, value in rows:
        grid.add_row(key, value)
    for warning in job.warnings:
        grid.add_row("warning", Text(warning, style="yellow"))
    return grid


def _array_text(spec: str, tasks: ArrayCounts | None) -> str:
    """``0-99%10: 100 tasks (3 running, 40 completed, 57 pending)``."""
    if not tasks:
        return spec
    counts = ", ".join(f"{n} {state}" for state, n in sorted(tasks.by_state.items()) if n)
    return f"{spec}: {tasks.count} tasks ({counts})"


def _event_line(row: EventPublic) -> Text:
    line = Text(f"{render.local_time(row.at)}  job {row.job_id}  ")
    if row.from_state:
        line += render.state_text(row.from_state) + Text(" → ")
    line += render.state_text(row.to_state)
    if row.message:
        line += Text(f"  {row.message}")
    return line


@guarded
def events(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="ID")],
    follow: Annotated[
        bool, Opt("--follow", "-f", help="Keep printing until the job ends.")
    ] = False,
    as_json: Annotated[bool, Opt("--json", help="One JSON object per line.")] = False,
) -> None:
    """A job's state changes, oldest first."""
    runtime: Runtime = ctx.obj
    console = render.out()
    with runtime.client() as api:
        rows = api.follow_events(job_id) if follow else api.iter_events(job_id)
        try:
            for row in rows:
                if as_json:
                    render.write_raw(row.model_dump_json() + "\n")
                else:
                    console.print(_event_line(row))
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


@guarded
def cancel(
    ctx: typer.Context,
    ids: Annotated[list[int], typer.Argument(metavar="ID...", help="Jobs to cancel.")],
) -> None:
    """Cancel jobs; prints each one's new state. Exit 1 if any could not be cancelled."""
    runtime: Runtime = ctx.obj
    failures = 0
    with runtime.client() as api:
        for job_id in ids:
            try:
                answer = api.cancel(job_id)
            except (NotFound, Conflict) as exc:
                render.error(exc.message)
                failures += 1
                continue
            render.out().print(Text(f"job {job_id}: ") + render.state_text(answer.state))
    if failures:
        raise typer.Exit(FAILED)
