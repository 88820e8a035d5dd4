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
from gantry.jobs.errors import JobAlreadyEnded, JobNotFound
from gantry.jobs.registry import ActiveJobs
from gantry.jobs.statelog import StateLog
from gantry.jobs.states import TERMINAL, JobState
from gantry.jobs.times import utc

log = logging.getLogger(__name__)

#: Starts a task in the engine's task group (a no-op before the engine runs).
Spawn = Callable[[Callable[[], Coroutine[Any, Any, None]]], None]
ReadStates = Callable[[Sequence[int]], Awaitable[dict[int, tuple[str, str]]]]


class Cancellation:
    def __init__(
        self,
        active: ActiveJobs,
        state_log: StateLog,
        backends: Mapping[str, Backend],
        spawn: Spawn,
        read_states: ReadStates,
    ) -> None:
        self._active = active
        self._log = state_log
        self._backends = backends
        self._spawn = spawn
        self._read_states = read_states

    async def cancel(self, job_id: int, reason: str) -> str:
        """Cancel a job; idempotent while it runs. Returns its state now."""
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
        self.cancel_job(job, reason)
        return job.state.value

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
