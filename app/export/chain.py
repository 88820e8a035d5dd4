"""Which jobs an export holds: a job, and with ``whole`` the chain it belongs to.

The chain of a job is every job it depends on (transitively: the measurement
an analysis read) and every job that depends on it (transitively: the
analyses of its data), never the siblings of those. The reads are sync and
run on a worker thread; nothing here knows HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select

from gantry.jobs.store.read import dep_t, get_dependencies, get_job, job_t, list_events

#: The most jobs one crate holds; a bigger chain is refused (ask for the job alone).
MAX_CHAIN = 500
#: The most events of one job a crate holds (retries add a few each).
MAX_EVENTS = 10_000


class ChainTooLong(ValueError):
    def __init__(self, job_id: int, found: int) -> None:
        super().__init__(
            f"the chain of job {job_id} has more than {MAX_CHAIN} jobs ({found} found so far): "
            "export the job alone with chain=false"
        )


@dataclass(slots=True)
class ExportJob:
    """One job of an export: its row, events, and where its files are."""

    row: dict[str, Any]
    depends_on: list[int]
    events: list[dict[str, Any]]
    #: an instrument job's data directory (its last attempt); None for command jobs
    data_dir: Path | None = None
    #: stream name ("stdout", "stderr") -> the last attempt's log file
    logs: dict[str, Path] = field(default_factory=dict)
    #: where a command job ran: its relative ``outputs`` are taken from there
    working_dir: Path | None = None

    @property
    def id(self) -> int:
        return int(self.row["id"])


def _dependents(conn: Connection, job_ids: Sequence[int]) -> dict[int, list[int]]:
    """job id -> ids of the jobs that depend on it (the reverse of get_dependencies)."""
    found: dict[int, list[int]] = {}
    if not job_ids:
        return found
    query = select(dep_t.c.depends_on_id, dep_t.c.job_id).where(
        dep_t.c.depends_on_id.in_(sorted(job_ids))
    )
    for upstream, downstream in conn.execute(query):
        found.setdefault(upstream, []).append(downstream)
    return found


def _walk(
    conn: Connection,
    start: int,
    step: Callable[[Connection, Sequence[int]], dict[int, list[int]]],
    seen: set[int],
) -> None:
    frontier = [start]
    while frontier:
        nxt = {j for ids in step(conn, frontier).values() for j in ids} - seen
        seen |= nxt
        if len(seen) > MAX_CHAIN:
            raise ChainTooLong(start, len(seen))
        frontier = sorted(nxt)


def chain_ids(conn: Connection, job_id: int) -> list[int]:
    """The job, its dependencies and its dependents, transitively, by id."""
    upstream: set[int] = {job_id}
    _walk(conn, job_id, get_dependencies, upstream)
    downstream: set[int] = {job_id}
    _walk(conn, job_id, _dependents, downstream)
    found = upstream | downstream
    if len(found) > MAX_CHAIN:
        raise ChainTooLong(job_id, len(found))
    return sorted(found)


def read_jobs(conn: Connection, job_id: int, *, whole: bool) -> list[ExportJob]:
    """The rows and events of the export's jobs (empty if ``job_id`` does not exist)."""
    if get_job(conn, job_id) is None:
        return []
    ids = chain_ids(conn, job_id) if whole else [job_id]
    deps = get_dependencies(conn, ids)
    found = conn.execute(select(job_t).where(job_t.c.id.in_(ids))).mappings()
    rows = {r["id"]: dict(r) for r in found}
    return [
        ExportJob(
            row=rows[i],
            depends_on=deps.get(i, []),
            events=list_events(conn, job_id=i, after_id=0, limit=MAX_EVENTS),
        )
        for i in ids
        if i in rows
    ]


def in_order(jobs: Sequence[ExportJob]) -> list[ExportJob]:
    """Dependencies before their dependents (a dependent reads their results)."""
    by_id = {j.id: j for j in jobs}
    done: dict[int, ExportJob] = {}

    def visit(job: ExportJob, path: frozenset[int]) -> None:
        if job.id in done or job.id in path:
            return
        for upstream in job.depends_on:
            if upstream in by_id:
                visit(by_id[upstream], path | {job.id})
        done[job.id] = job

    for job in jobs:
        visit(job, frozenset())
    return list(done.values())
