"""Cancellation: idempotent, and right whatever the job is doing.

A job not handed over yet ends ``cancelled`` at once; one whose submit is in
flight is finished when the submit returns; one with a ref goes
``cancelling`` until its backend reports the end.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

from gantry.backends.base import Backend
from gantry.jobs.active import ActiveJob
from gantry.jobs.arrays import parse_stored
from gantry.jobs.errors import JobAlreadyEnded, JobNotFound, TaskNotCancellable, TaskNotFound
from gantry.jobs.registry import ActiveJobs
from gantry.jobs.statelog import StateLog
from gantry.jobs.states import ACTIVE, TERMINAL, JobState
from gantry.jobs.times import utc

log = logging.getLogger(__name__)

#: Starts a task in the engine's task group (a no-op before the engine runs).
Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]
ReadStates = Callable[[Sequence[int]], Awaitable[dict[int, tuple[str, str]]]]
#: Asks the server that owns a job to cancel it (several servers); its state, None if ended.
AskOwner = Callable[[int, str], Awaitable[str | None]]
_UNFINISHED = frozenset(s.value for s in ACTIVE)


class Cancellation:
    def __init__(
        self,
        active: ActiveJobs,
        state_log: StateLog,
        backends: Mapping[str, Backend],
        spawn: Spawn,
        read_states: ReadStates,
        ask_owner: AskOwner | None = None,
    ) -> None:
        self._active = active
        self._log = state_log
        self._backends = backends
        self._spawn = spawn
        self._read_states = read_states
        self._ask_owner = ask_owner

    async def cancel(self, job_id: int, reason: str) -> str:
        """Cancel a job; idempotent while it runs. Returns its state now.

        A job another server runs is cancelled by its owner, asked through
        the database: it is ``cancelling`` from then on, as far as this one knows.
        """
        try:
            job = await self._active_job(job_id)
        except JobAlreadyEnded as exc:
            if exc.state not in _UNFINISHED or self._ask_owner is None:
                raise
            state = await self._ask_owner(job_id, reason)
            if state is None:  # it ended meanwhile
                raise JobAlreadyEnded(
                    job_id, (await self._read_states([job_id]))[job_id][0]
                ) from None
            return JobState.CANCELLING.value
        self.cancel_job(job, reason)
        return job.state.value

    async def _active_job(self, job_id: int) -> ActiveJob:
        """The job if it has not ended; else JobNotFound or JobAlreadyEnded."""
        job = self._active.jobs.get(job_id)
        if job is None:
            known = self._active.final_states.get(job_id)
            if known is None:
                known = (await self._read_states([job_id])).get(job_id)
            if known is None:
                raise JobNotFound(job_id)
            job = self._active.jobs.get(job_id)  # it may have been created meanwhile
            if job is None:
                raise JobAlreadyEnded(job_id, known[0])
        return job

    async def cancel_task(self, job_id: int, index: int) -> str:
        """Cancel one task of an array job; the others run on. Returns its state now."""
        job = await self._active_job(job_id)
        if job.tasks is None or job.spec.array is None:
            raise TaskNotFound(job_id, index, "it is not an array job")
        if index not in parse_stored(job.spec.array):
            raise TaskNotFound(job_id, index, f"its array is {job.spec.array}")
        ended = job.tasks.ended.get(index)
        if ended is not None:
            raise TaskNotCancellable(job_id, index, ended, f"already ended: it is {ended}")
        backend = self._backends.get(job.backend)
        if job.ref is None or backend is None or job.state is JobState.CANCELLING:
            raise TaskNotCancellable(
                job_id, index, job.state.value,
                f"cannot be cancelled alone while the array is {job.state.value}: "
                "cancel the whole array, or this task once the array is submitted",
            )  # fmt: skip
        try:
            await backend.cancel_task(job.ref, index)
        except Exception as exc:
            log.warning("job %s: %s could not cancel task %d: %s", job.label, job.backend,
                        index, exc)  # fmt: skip
        return JobState.CANCELLING.value

    def cancel_job(self, job: ActiveJob, reason: str) -> None:
        if job.state is JobState.CANCELLING or job.state in TERMINAL:
            return
        dispatched = job.ref is not None or job.dispatching
        self._log.move(job, JobState.CANCELLING, reason)
        job.cancel_reason = reason
        if not dispatched:
            self._log.move(job, JobState.CANCELLED, reason, ended_at=utc(None))
        elif job.ref is not None:
            self.start_backend_cancel(job)
        # else: submit is in flight; handed_over() or refused() finishes it

    def start_backend_cancel(self, job: ActiveJob) -> None:
        backend = self._backends.get(job.backend)
        if backend is None or job.ref is None:
            return
        ref = job.ref

        async def cancel() -> None:
            try:
                await backend.cancel(ref)
            except Exception as exc:
                log.warning("job %s: %s could not cancel %s: %s", job.label, job.backend, ref, exc)

        self._spawn(cancel)
