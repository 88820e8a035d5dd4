"""Start-up reconciliation: every job that had not ended is taken back.

After any stop (clean, crash, kill -9) the store says where each job was;
its backend says where it is now:

- queued, never dispatched: queued again;
- queued with a dispatch intent but no ref (the server died inside
  ``submit``): the backend's ``lookup`` says whether it got the job; if it
  did, the job is re-adopted, otherwise it is dispatched again;
- submitted / running / cancelling: ``adopt`` then one bulk ``status`` call;
  jobs that ended while the server was down get their real outcome.

A backend whose ``lookup``, ``adopt`` or ``status`` raises is taken out of
dispatch (its jobs wait, nothing runs twice) and the server starts anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gantry.backends.base import Backend, JobSubmission, StatusReport
from gantry.jobs.active import ActiveJob
from gantry.jobs.gating import EndedLookup
from gantry.jobs.registry import ActiveJobs
from gantry.jobs.states import JobState
from gantry.jobs.store.records import ActiveRows

log = logging.getLogger(__name__)


class RecoveryHost(Protocol):
    """What reconciliation needs of the engine."""

    @property
    def active(self) -> ActiveJobs: ...

    @property
    def backends(self) -> Mapping[str, Backend]: ...

    async def load_active(self) -> ActiveRows: ...

    def link(self, depends_on: Mapping[int, Sequence[int]], ended: EndedLookup) -> None: ...

    def move(self, job: ActiveJob, to: JobState, message: str | None, **values: Any) -> bool: ...

    def write(self, job_id: int, **values: Any) -> None: ...

    def submission(self, job: ActiveJob, backend: Backend, attempt: int) -> JobSubmission: ...

    def on_report(self, backend: str, ref: str, report: StatusReport) -> None: ...

    def start_backend_cancel(self, job: ActiveJob) -> None: ...

    def schedule_retry(self, job: ActiveJob) -> None: ...

    def consider(self, job: ActiveJob) -> None: ...

    def backend_failed(self, name: str, reason: str) -> None: ...

    async def drain(self) -> None: ...


async def recover(host: RecoveryHost) -> None:
    """Start-up: every unfinished job of this server taken back."""
    count = await take_back(host, await host.load_active())
    if count:
        log.info("recovered %d unfinished jobs", count)


async def take_back(host: RecoveryHost, stored: ActiveRows) -> int:
    """Jobs as stored, taken on as after a restart; how many were new here.

    At start-up they are this server's own; with several servers, also the
    jobs of a dead server (:mod:`gantry.jobs.servers`): what was handed over
    is re-adopted through the backend (``lookup``, ``adopt``, ``status``),
    never run again; what was not is dispatched. Jobs already known are skipped.
    """
    active = host.active
    known = active.jobs
    rows = [row for row in stored.rows if row["id"] not in known]
    taken: list[ActiveJob] = []
    for row in rows:
        job = ActiveJob.from_row(row)
        if job.tasks is not None:
            job.tasks.seed(stored.tasks.get(job.id, {}))
            job.tasks.add_cost(*stored.task_costs.get(job.id, (None, None, None)))
        active.add(job)
        taken.append(job)
    new = {job.id for job in taken}
    depends_on = {i: deps for i, deps in stored.depends_on.items() if i in new}
    host.link(depends_on, lambda dep_id: stored.ended.get(dep_id, ("missing", "?")))

    by_backend: dict[str, list[ActiveJob]] = {}
    for job in taken:
        by_backend.setdefault(job.backend, []).append(job)
    for name, jobs in by_backend.items():
        backend = host.backends.get(name)
        if backend is None:
            for job in jobs:
                log.warning("job %s waits: backend %r is not available", job.label, name)
            continue
        try:
            await _recover_backend(host, name, backend, jobs)
        except Exception as exc:
            log.exception("backend %s failed while its jobs were recovered", name)
            host.backend_failed(
                name, f"recovering its jobs failed ({type(exc).__name__}: {exc}); restart to retry"
            )
    for job in taken:
        if job.id not in active.jobs:
            continue  # it ended while it was recovered
        if job.not_before is not None:
            host.schedule_retry(job)
        host.consider(job)
    await host.drain()
    return len(taken)


async def _recover_backend(
    host: RecoveryHost, name: str, backend: Backend, jobs: list[ActiveJob]
) -> None:
    active = host.active
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
                    host.move(job, JobState.CANCELLED, job.cancel_reason, in_flight=False)
                continue
            job.ref = ref
            job.in_flight = False
            active.register_ref(job)
            if job.state is JobState.QUEUED:
                host.move(
                    job,
                    JobState.SUBMITTED,
                    f"found on {name} as {ref} after a restart",
                    backend_ref=ref,
                    in_flight=False,
                )
            else:
                host.write(job.id, backend_ref=ref, in_flight=False)

    dispatched = [j for j in jobs if j.ref is not None and j.id in active.jobs]
    for job in dispatched:
        active.register_ref(job)
        await backend.adopt(host.submission(job, backend, job.attempt), job.ref or "")
    if not dispatched:
        return
    reports = await backend.status([j.ref or "" for j in dispatched])
    for job in dispatched:
        report = reports.get(job.ref or "")
        if report is not None:
            host.on_report(name, job.ref or "", report)
        if job.state is JobState.CANCELLING and job.id in active.jobs:
            host.start_backend_cancel(job)
