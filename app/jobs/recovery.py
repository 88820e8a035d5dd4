"""Start-up reconciliation: every job that had not ended is taken back.

After any stop (clean, crash, kill -9) the database says where each job was;
its backend says where it is now:

- queued, never dispatched: queued again;
- queued with a dispatch intent but no ref (the server died inside
  ``submit``): the backend's ``lookup`` says whether it got the job; if it
  did, the job is re-adopted, otherwise it is dispatched again;
- submitted / running / cancelling: ``adopt`` then one bulk ``status`` call;
  jobs that ended while the server was down get their real outcome.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio

from gantry.jobs.active import ActiveJob
from gantry.jobs.states import JobState
from gantry.jobs.store import get_dependencies, job_states, load_active

if TYPE_CHECKING:
    from sqlalchemy import Engine as Database

    from gantry.jobs.engine import Engine

log = logging.getLogger(__name__)


Rows = list[dict[str, Any]]


def _read(database: Database) -> tuple[Rows, dict[int, list[int]], dict[int, tuple[str, str]]]:
    with database.connect() as conn:
        rows = load_active(conn)
        deps = get_dependencies(conn, [row["id"] for row in rows])
        ended = {d for ds in deps.values() for d in ds} - {row["id"] for row in rows}
        return rows, deps, job_states(conn, list(ended))


async def recover(engine: Engine) -> None:
    rows, deps, dep_states = await anyio.to_thread.run_sync(_read, engine.database)
    for row in rows:
        engine.jobs[row["id"]] = ActiveJob.from_row(row)
    doomed: list[tuple[ActiveJob, str]] = []
    for job_id, dep_ids in deps.items():
        job = engine.jobs[job_id]
        for dep_id in dep_ids:
            if dep_id in engine.jobs:
                job.wait_for(dep_id)
                engine.jobs[dep_id].add_dependent(job_id)
            else:
                state, name = dep_states.get(dep_id, ("missing", "?"))
                if state != JobState.COMPLETED:
                    doomed.append((job, f"dependency {dep_id} ({name}) {state}"))
    for job, reason in doomed:
        engine.cancel_job(job, reason)

    by_backend: dict[str, list[ActiveJob]] = {}
    for job in list(engine.jobs.values()):
        by_backend.setdefault(job.backend, []).append(job)
    for name, jobs in by_backend.items():
        backend = engine.backends.get(name)
        if backend is None:
            for job in jobs:
                log.warning("job %s waits: backend %r is not available", job.label, name)
            continue
        await _recover_backend(engine, name, jobs)
    for job in list(engine.jobs.values()):
        if job.not_before is not None:
            engine.schedule_retry(job)
        engine.consider(job)
    await engine.drain()
    if engine.jobs:
        log.info("recovered %d unfinished jobs", len(engine.jobs))


async def _recover_backend(engine: Engine, name: str, jobs: list[ActiveJob]) -> None:
    backend = engine.backends[name]
    in_doubt = [j for j in jobs if j.ref is None and j.in_flight]
    if in_doubt:
        found = await backend.lookup([j.key for j in in_doubt])
        for job in in_doubt:
            ref = found.get(job.key)
            if ref is None:
                # Never reached the backend: dispatched again below, or,
                # if a cancel was asked for meanwhile, simply cancelled.
                job.in_flight = False
                if job.state is JobState.CANCELLING:
                    engine.move(job, JobState.CANCELLED, job.cancel_reason, in_flight=False)
                continue
            job.ref = ref
            job.in_flight = False
            engine.register_ref(job)
            if job.state is JobState.QUEUED:
                engine.move(
                    job,
                    JobState.SUBMITTED,
                    f"found on {name} as {ref} after a restart",
                    backend_ref=ref,
                    in_flight=False,
                )
            else:
                engine.write(job.id, backend_ref=ref, in_flight=False)

    dispatched = [j for j in jobs if j.ref is not None and j.id in engine.jobs]
    for job in dispatched:
        engine.register_ref(job)
        await backend.adopt(engine.submission(job, backend), job.ref or "")
    if not dispatched:
        return
    reports = await backend.status([j.ref or "" for j in dispatched])
    for job in dispatched:
        report = reports.get(job.ref or "")
        if report is not None:
            engine.on_report(name, job.ref or "", report)
        if job.state is JobState.CANCELLING and job.id in engine.jobs:
            engine.start_backend_cancel(job)
