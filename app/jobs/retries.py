"""Retries: a failed attempt is queued again after an exponential backoff."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

from gantry.jobs.active import ActiveJob
from gantry.jobs.cancellation import Spawn
from gantry.jobs.registry import ActiveJobs
from gantry.jobs.statelog import StateLog
from gantry.jobs.states import JobState
from gantry.jobs.times import utc


class Retries:
    def __init__(
        self,
        active: ActiveJobs,
        state_log: StateLog,
        consider: Callable[[ActiveJob], None],
        spawn: Spawn,
    ) -> None:
        self._active = active
        self._log = state_log
        self._consider = consider
        self._spawn = spawn

    def allowed(self, job: ActiveJob) -> bool:
        return job.attempt <= job.spec.max_retries

    def retry(self, job: ActiveJob, reason: str, exit_code: int | None) -> None:
        """Queue a failed attempt again: ``retry_delay`` doubles with each attempt."""
        delay = job.spec.retry_delay * 2 ** (job.attempt - 1)
        message = (
            f"attempt {job.attempt} failed ({reason}); retry {job.attempt} of "
            f"{job.spec.max_retries} in {delay:g} s"
        )
        self._active.forget_ref(job)
        job.ref = None
        job.not_before = time.time() + delay
        self._log.move(
            job,
            JobState.QUEUED,
            message,
            backend_ref=None,
            exit_code=exit_code,
            not_before=utc(job.not_before),
        )
        self.schedule(job)

    def schedule(self, job: ActiveJob) -> None:
        """Consider ``job`` again once its ``not_before`` has passed."""
        if job.not_before is None:
            return
        wait = max(0.0, job.not_before - time.time())

        async def later() -> None:
            await anyio.sleep(wait)
            job.not_before = None
            if self._active.jobs.get(job.id) is job:
                self._consider(job)

        self._spawn(later)
