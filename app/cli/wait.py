"""Following jobs until they end: a spinner for one, a progress bar for many."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any, NoReturn

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gantry.cli import render
from gantry.cli.client import GantryClient
from gantry.cli.errors import FAILED, INTERRUPTED, CliError
from gantry.cli.sse import SseEvent


def job_events(api: GantryClient, job_id: int, after: int = 0) -> Iterator[dict[str, Any]]:
    """A job's events, backlog first, until its terminal one (or the stream ends)."""
    with api.stream(f"/jobs/{job_id}/events", {"follow": True, "after": after}) as events:
        yield from _decoded(events)


def _decoded(events: Iterator[SseEvent]) -> Iterator[dict[str, Any]]:
    for event in events:
        if event.event == "job":
            row: dict[str, Any] = json.loads(event.data)
            yield row


def wait_for_job(api: GantryClient, job_id: int) -> dict[str, Any]:
    """Follow one job with a status line on stderr; return the ended job."""
    console = render.err()
    state = "queued"
    try:
        with console.status(f"job {job_id}: {state}") as status:
            for row in job_events(api, job_id):
                state = row["to_state"]
                status.update(f"job {job_id}: {state}")
                if state in render.TERMINAL:
                    break
                if not console.is_terminal:  # no spinner in a pipe: one line per change
                    render.note(f"job {job_id}: {state}")
    except KeyboardInterrupt:
        _interrupted(f"job {job_id} keeps running: `gantry cancel {job_id}` stops it")
    job: dict[str, Any] = api.get(f"/jobs/{job_id}")
    if job["state"] not in render.TERMINAL:
        raise CliError(
            f"the event stream ended early; job {job_id} is {job['state']}: "
            f"run `gantry status {job_id}` later"
        )
    return job


def report_end(job: dict[str, Any]) -> int:
    """Say how a job ended; the exit code: 0 if it completed, else 1."""
    state = job["state"]
    what = f"job {job['id']} {state}"
    if job.get("exit_code") not in (None, 0):
        what += f" (exit code {job['exit_code']})"
    if job.get("reason"):
        what += f": {job['reason']}"
    render.note(what, render.STATE_STYLES.get(state, ""))
    return 0 if state == "completed" else FAILED


def wait_for_batch(api: GantryClient, jobs: list[dict[str, Any]]) -> dict[int, str]:
    """Follow many jobs with a progress bar; the state each ended in.

    All events of the batch come after the first job's creation event (one
    transaction wrote them all), so the all-jobs stream starts there.
    """
    ids = {job["id"] for job in jobs}
    first = min(ids)
    page = api.get(f"/jobs/{first}/events", {"limit": 1})
    after = page["items"][0]["id"] - 1 if page["items"] else 0
    ended: dict[int, str] = {}
    counts: Counter[str] = Counter()
    pending = set(ids)
    console = render.err()
    columns = (
        TextColumn("jobs ended"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    try:
        # A pipe gets no bar: rich would leave an empty line there.
        with Progress(
            *columns, console=console, transient=True, disable=not console.is_terminal
        ) as progress:
            task = progress.add_task("", total=len(ids))
            with api.stream("/events", {"follow": True, "after": after}) as events:
                for row in _decoded(events):
                    if row["job_id"] in pending and row["to_state"] in render.TERMINAL:
                        pending.discard(row["job_id"])
                        ended[row["job_id"]] = row["to_state"]
                        counts[row["to_state"]] += 1
                        progress.update(task, advance=1, description=summary(counts))
                        if not pending:
                            break
    except KeyboardInterrupt:
        _interrupted(f"{len(pending)} jobs keep running")
    if pending:
        raise CliError(f"the event stream ended early; {len(pending)} jobs had not ended")
    return ended


def summary(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))


def _interrupted(message: str) -> NoReturn:
    raise CliError(f"stopped waiting: {message}", INTERRUPTED)
