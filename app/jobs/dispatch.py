"""One dispatcher per backend: hands ready jobs over, highest priority first.

Each backend has its own, so a slow or unreachable scheduler (Slurm timing
out) never holds up jobs for another backend.
"""

from __future__ import annotations

import heapq
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from gantry.backends.base import Backend, BackendError
from gantry.jobs.active import ActiveJob
from gantry.jobs.states import JobState
from gantry.jobs.store import Transition, apply_transitions

if TYPE_CHECKING:
    from gantry.jobs.engine import Engine

log = logging.getLogger(__name__)

BATCH = 1000


class Dispatcher:
    def __init__(self, engine: Engine, name: str, backend: Backend) -> None:
        self.engine = engine
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
        for job_id in held:
            job = self.engine.jobs.get(job_id)
            if job is not None:
                self.push(job)

    def _take(self) -> list[ActiveJob]:
        taken: list[ActiveJob] = []
        while self._heap and len(taken) < BATCH:
            _, job_id = heapq.heappop(self._heap)
            self._queued.discard(job_id)
            job = self.engine.jobs.get(job_id)
            if job is None or job.state is not JobState.QUEUED or job.dispatching:
                continue
            reason = self.backend.hold(self.engine.submission(job, self.backend))
            if reason is None:
                taken.append(job)
                continue
            if self._held.get(job_id) != reason:
                self.engine.write(job_id, reason=reason)
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
            await self.engine.writer.execute(partial(apply_transitions, transitions=intents))
        except Exception as exc:
            log.exception("could not record dispatch of %d jobs", len(batch))
            for job in batch:
                job.attempt -= 1
                job.in_flight = False
                self.engine.refused(job, f"gantry could not record the dispatch: {exc}")
            return
        for job in batch:
            await self._slots.acquire()
            tg.start_soon(self._submit, job)

    async def _submit(self, job: ActiveJob) -> None:
        try:
            submission = self.engine.submission(job, self.backend)
            ref = await self.backend.submit(submission, self.engine.dependency_refs(job))
        except BackendError as exc:
            self.engine.refused(job, f"{self.name} refused the job: {exc}")
        except Exception as exc:
            log.exception("job %s: backend %s crashed in submit", job.label, self.name)
            self.engine.refused(job, f"{self.name} failed to submit: {type(exc).__name__}: {exc}")
        else:
            self.engine.handed_over(job, ref)
        finally:
            self._slots.release()
