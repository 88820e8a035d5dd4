"""One dispatcher per backend: hands ready jobs over, highest priority first.

Each backend has its own, so a slow or unreachable scheduler (Slurm timing
out) never holds up jobs for another backend. Every call into the backend
(``hold``, ``logs`` while building the submission, ``submit``) is guarded: a
plug-in that raises fails the job it was asked about, never the engine.

A job is handed over only once its dispatch intent is *claimed*: written,
and with several servers on PostgreSQL locked with ``FOR UPDATE SKIP
LOCKED`` while this server still owns it (:mod:`gantry.jobs.store.owners`).
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import anyio

from gantry.backends.base import Backend, BackendError, JobSubmission
from gantry.jobs.active import ActiveJob
from gantry.jobs.meter import Meter
from gantry.jobs.states import JobState
from gantry.jobs.store.records import Transition

log = logging.getLogger(__name__)

BATCH = 1000
#: seconds before jobs whose claim failed are looked at again
RETRY_CLAIM = 1.0


class DispatchHost(Protocol):
    """What a dispatcher needs of the engine."""

    @property
    def jobs(self) -> Mapping[int, ActiveJob]: ...

    @property
    def meter(self) -> Meter: ...

    def submission(self, job: ActiveJob, backend: Backend, attempt: int) -> JobSubmission: ...

    def dependency_refs(self, job: ActiveJob) -> list[str]: ...

    def write(self, job_id: int, **values: Any) -> None: ...

    async def claim(self, intents: Sequence[Transition]) -> set[int]:
        """Write the dispatch intents of the jobs this server may hand over; their ids.

        Raises if the write fails. With several servers, a job another server
        owns or holds locked is left out.
        """
        ...

    def handed_over(self, job: ActiveJob, ref: str) -> None: ...

    def refused(self, job: ActiveJob, reason: str) -> None: ...


def crashed(backend: str, method: str, exc: Exception) -> str:
    """A job's reason when its backend's own code raised."""
    return f"backend {backend} crashed in {method}: {type(exc).__name__}: {exc}"


class Dispatcher:
    def __init__(self, host: DispatchHost, name: str, backend: Backend) -> None:
        self.host = host
        self.name = name
        self.backend = backend
        self._heap: list[tuple[int, int]] = []
        self._queued: set[int] = set()
        #: jobs the backend holds back (``Backend.hold``), by id
        self._held: dict[int, str] = {}
        self._wake = anyio.Event()
        limit = int(backend.context.config.get("submit_concurrency", "16"))
        self._slots = anyio.Semaphore(max(1, limit))

    def push(self, job: ActiveJob) -> None:
        if job.id not in self._queued:
            self._queued.add(job.id)
            heapq.heappush(self._heap, (-job.priority, job.id))
            self._wake.set()

    def wake(self) -> None:
        """The backend may take held jobs now: look at them again."""
        held, self._held = self._held, {}
        jobs = self.host.jobs
        for job_id in held:
            job = jobs.get(job_id)
            if job is not None:
                self.push(job)

    def _take(self) -> list[ActiveJob]:
        taken: list[ActiveJob] = []
        jobs = self.host.jobs
        while self._heap and len(taken) < BATCH:
            _, job_id = heapq.heappop(self._heap)
            self._queued.discard(job_id)
            job = jobs.get(job_id)
            if job is None or job.state is not JobState.QUEUED or job.dispatching:
                continue
            method = "logs"  # building the submission asks the backend for log paths
            try:
                # The attempt it would become: the same submission is submitted.
                submission = self.host.submission(job, self.backend, job.attempt + 1)
                method = "hold"
                reason = self.backend.hold(submission)
            except Exception as exc:
                log.exception("job %s: backend %s crashed in %s", job.label, self.name, method)
                self.host.refused(job, crashed(self.name, method, exc))
                continue
            if reason is None:
                taken.append(job)
                continue
            if self._held.get(job_id) != reason:
                self.host.write(job_id, reason=reason)
            self._held[job_id] = reason
        return taken

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                while batch := self._take():
                    await self._dispatch(batch, tg)

    async def _dispatch(self, batch: list[ActiveJob], tg: Any) -> None:
        # Commit the new attempt numbers before any backend sees the jobs:
        # after a crash, recovery asks the backend about exactly these keys.
        taken = time.monotonic()
        for job in batch:
            job.dispatching = True
            job.in_flight = True
            job.attempt += 1
        # One executemany for the whole batch (no events: not a state change).
        intents = [
            Transition(job.id, None, None, values={"attempt": job.attempt, "in_flight": True})
            for job in batch
        ]
        try:
            claimed = await self.host.claim(intents)
        except Exception as exc:
            # The database is away (restarting, unreachable): nothing was handed
            # over, so the jobs wait and are tried again; they never fail for it.
            log.warning("could not record the dispatch of %d jobs (%s); retrying", len(batch), exc)
            claimed = set()
        later = [job for job in batch if job.id not in claimed]
        for job in later:
            job.attempt -= 1
            job.in_flight = False
            job.dispatching = False
            if job.state is JobState.CANCELLING:  # cancelled meanwhile: nothing to stop
                self.host.refused(job, job.cancel_reason or "cancelled")
        if later:
            # Not claimed: another server holds the row (it is taking the job
            # over; if it took it, this server has lost its lease and stops),
            # or the write failed. Looked at again shortly, never handed over unclaimed.
            tg.start_soon(self._again, later)
        for job in batch:
            if job.id in claimed:
                await self._slots.acquire()
                tg.start_soon(self._submit, job, taken)

    async def _again(self, jobs: list[ActiveJob]) -> None:
        await anyio.sleep(RETRY_CLAIM)
        for job in jobs:
            self.push(job)

    async def _submit(self, job: ActiveJob, taken: float) -> None:
        try:
            submission = self.host.submission(job, self.backend, job.attempt)
            ref = await self.backend.submit(submission, self.host.dependency_refs(job))
        except BackendError as exc:
            self.host.refused(job, f"{self.name} refused the job: {exc}")
        except Exception as exc:
            log.exception("job %s: backend %s crashed in submit", job.label, self.name)
            self.host.refused(job, f"{self.name} failed to submit: {type(exc).__name__}: {exc}")
        else:
            self.host.meter.dispatched(self.name, time.monotonic() - taken)
            self.host.handed_over(job, ref)
        finally:
            self._slots.release()
