"""Following jobs until they end: a spinner for one, a progress bar for many."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gantry.cli import render
from gantry.cli.errors import FAILED, INTERRUPTED, CliError
from gantry.client import Client
from gantry.client.models import EventPublic, JobPublic, State
from gantry.client.waiting import TERMINAL


@contextmanager
def _interruptible(message: str) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        raise CliError(f"stopped waiting: {message}", INTERRUPTED) from None


def wait_for_job(api: Client, job_id: int) -> JobPublic:
    """Follow one job with a status line on stderr; return the ended job."""
    console = render.err()
    with (
        _interruptible(f"job {job_id} keeps running: `gantry cancel {job_id}` stops it"),
        console.status(f"job {job_id}: queued") as status,
    ):

        def show(row: EventPublic) -> None:
            status.update(f"job {job_id}: {row.to_state}")
            if not console.is_terminal and row.to_state not in TERMINAL:
                render.note(f"job {job_id}: {row.to_state}")  # no spinner in a pipe

        return api.wait(job_id, on_event=show)


def report_end(job: JobPublic) -> int:
    """Say how a job ended; the exit code: 0 if it completed, else 1."""
    what = f"job {job.id} {job.state}"
    if job.exit_code not in (None, 0):
        what += f" (exit code {job.exit_code})"
    if job.reason:
        what += f": {job.reason}"
    render.note(what, render.STATE_STYLES.get(job.state, ""))
    return 0 if job.state == "completed" else FAILED


def wait_for_batch(api: Client, ids: Iterable[int]) -> dict[int, State]:
    """Follow many jobs with a progress bar; the state each ended in."""
    wanted = set(ids)
    counts: Counter[str] = Counter()
    console = render.err()
    columns = (
        TextColumn("jobs ended"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    # A pipe gets no bar: rich would leave an empty line there.
    with (
        _interruptible("the jobs keep running"),
        Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar,
    ):
        task = bar.add_task("", total=len(wanted))

        def show(row: EventPublic) -> None:
            if row.to_state in TERMINAL:
                counts[row.to_state] += 1
                bar.update(task, advance=1, description=summary(counts))

        return api.wait_all(wanted, on_event=show)


def summary(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
