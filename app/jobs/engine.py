"""The engine: decides what runs next and keeps every job's state true.

It knows backends only through ``gantry.backends.base``, its storage only
through the :class:`~gantry.jobs.store.ports.JobStore` port, and no HTTP.
All its state changes happen on the event loop, in memory first, and are
written by the :class:`~gantry.jobs.statelog.StateLog` (one write per flush,
an event row per change). Durability where it matters: the dispatch intent
(a new attempt number) is committed *before* a backend sees the job, so a
crash can never make a job run twice unnoticed (see :mod:`gantry.jobs.recovery`).

The engine itself only assembles its parts and runs them:

- :mod:`~gantry.jobs.intake`: submissions and their group commit;
- :mod:`~gantry.jobs.statelog`: state changes and their writes;
- :mod:`~gantry.jobs.registry`: the active jobs, by id and by ref;
- :mod:`~gantry.jobs.gating`: dependencies; :mod:`~gantry.jobs.retries`;
  :mod:`~gantry.jobs.cancellation`; :mod:`~gantry.jobs.outcomes` (what
  backends answer and report);
- :mod:`~gantry.jobs.dispatch` and :mod:`~gantry.jobs.recovery`, which see
  the engine only through small Protocols;
- :func:`~gantry.jobs.supervise.run_guarded` for each backend's own task.

Wake-ups are events (a job was created, a job ended, a backend reported),
never a polling sleep.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from gantry.backends.base import (
    Backend,
    JobSubmission,
    LogStream,
    StatusReport,
    StatusReporter,
    default_log_path,
)
from gantry.jobs.active import ActiveJob
from gantry.jobs.cancellation import Cancellation
from gantry.jobs.dispatch import Dispatcher
from gantry.jobs.errors import JobAlreadyEnded, JobNotFound
from gantry.jobs.events import EventHub
from gantry.jobs.gating import EndedLookup, Gate
from gantry.jobs.handover import Handover
from gantry.jobs.intake import Intake
from gantry.jobs.meter import Meter, NoMeter
from gantry.jobs.outcomes import Outcomes
from gantry.jobs.recovery import recover
from gantry.jobs.registry import ActiveJobs
from gantry.jobs.retries import Retries
from gantry.jobs.spec import NewJob
from gantry.jobs.statelog import StateLog
from gantry.jobs.states import JobState
from gantry.jobs.store.ports import JobStore
from gantry.jobs.store.records import ActiveRows, Created, Transition
from gantry.jobs.supervise import run_guarded

__all__ = ["Engine", "JobAlreadyEnded", "JobNotFound"]

log = logging.getLogger(__name__)


class Engine:
    """Schedules jobs onto backends; one instance per server."""

    def __init__(
        self,
        *,
        store: JobStore,
        backends: dict[str, Backend],
        hub: EventHub,
        data_dir: Path,
        meter: Meter | None = None,
    ) -> None:
        self.store = store
        self.backends = backends
        self.hub = hub
        self.data_dir = data_dir
        self.meter: Meter = meter or NoMeter()
        self.active = ActiveJobs()
        #: backends whose task group died, with the reason
        self.backend_errors: dict[str, str] = {}
        self._dispatchers: dict[str, Dispatcher] = {}
        self._tg: TaskGroup | None = None
        self._handover = Handover(data_dir / "work")
        self._log = StateLog(store, hub.publish, on_final=self._ended)
        self._cancellation = Cancellation(
            self.active, self._log, backends, self.spawn, store.states, store.request_cancel
        )
        self._gate = Gate(self.active, backends, self._dispatchers, self._cancellation.cancel_job)
        self._retries = Retries(self.active, self._log, self._gate.consider, self.spawn)
        self._outcomes = Outcomes(
            self.active, self._log, self._cancellation, self._retries, self._gate, self.meter
        )
        self._intake = Intake(store, self.active, self._gate, hub.publish)

    @property
    def jobs(self) -> dict[int, ActiveJob]:
        """The jobs that have not ended, by id."""
        return self.active.jobs

    @property
    def gate(self) -> Gate:
        """Dependency gating (several servers: dependencies another server runs)."""
        return self._gate

    @property
    def work_dir(self) -> Path:
        """Where a job without a working_dir starts."""
        return self._handover.work_dir

    # --- life cycle ----------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._log.run)
            for name, backend in self.backends.items():
                dispatcher = Dispatcher(self, name, backend)
                self._dispatchers[name] = dispatcher
                await tg.start(self._run_backend, name, backend)
                tg.start_soon(dispatcher.run)
            await recover(self)
            task_status.started()
            log.info("engine started", extra={"active_jobs": len(self.jobs)})

    async def _run_backend(
        self, name: str, backend: Backend, *, task_status: TaskStatus[None]
    ) -> None:
        """A backend in its own task group; if it dies, the server stays up."""

        def crashed(exc: Exception) -> None:
            self.backend_errors[name] = "its task group crashed; see the server log"

        await run_guarded(
            f"backend {name}",
            backend.run,
            on_crash=crashed,
            close=backend.close,
            task_status=task_status,
        )

    def spawn(self, task: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``task`` in the engine's task group (nothing before the engine runs)."""
        if self._tg is not None:
            self._tg.start_soon(task)

    def backend_failed(self, name: str, reason: str) -> None:
        """Take a backend out of dispatch: its queued jobs wait, nothing runs twice."""
        self.backend_errors[name] = reason
        self._dispatchers.pop(name, None)

    # --- what the API asks -------------------------------------------------------

    async def submit(
        self, new_jobs: Sequence[NewJob], idempotency: tuple[str, str] | None = None
    ) -> Created:
        """Store jobs in one transaction; the engine takes them on at commit."""
        return await self._intake.submit(new_jobs, idempotency)

    async def cancel(self, job_id: int, reason: str = "cancelled by request") -> str:
        """Cancel a job; idempotent while it runs. Returns its state now."""
        return await self._cancellation.cancel(job_id, reason)

    async def cancel_task(self, job_id: int, index: int) -> str:
        """Cancel one task of an array job; its other tasks run on."""
        return await self._cancellation.cancel_task(job_id, index)

    def log_path(self, job_id: int, backend: str, attempt: int, stream: LogStream) -> Path:
        """Where one attempt's log is; ended jobs of a removed backend use the default."""
        attempt = max(attempt, 1)
        instance = self.backends.get(backend)
        if instance is not None:
            try:
                return instance.logs(job_id, attempt, stream)
            except Exception:
                log.exception("backend %s crashed in logs; using the default path", backend)
        return default_log_path(self.data_dir / "logs", job_id, attempt, stream)

    def is_active(self, job_id: int) -> bool:
        return job_id in self.active.jobs

    # --- what backends are handed --------------------------------------------------

    def reporter(self, backend: str) -> StatusReporter:
        """``BackendContext.report`` for one backend."""

        def deliver(ref: str, report: StatusReport) -> None:
            self._outcomes.on_report(backend, ref, report)

        return deliver

    def waker(self, backend: str) -> Callable[[], None]:
        """``BackendContext.wake`` for one backend (safe before the engine runs)."""

        def wake() -> None:
            dispatcher = self._dispatchers.get(backend)
            if dispatcher is not None:
                dispatcher.wake()

        return wake

    # --- for dispatch and recovery (their Protocols) ---------------------------------

    def submission(self, job: ActiveJob, backend: Backend, attempt: int) -> JobSubmission:
        return self._handover.submission(job, backend, attempt)

    def dependency_refs(self, job: ActiveJob) -> list[str]:
        return self._gate.dependency_refs(job)

    async def claim(self, intents: Sequence[Transition]) -> set[int]:
        return await self.store.claim(intents)

    def handed_over(self, job: ActiveJob, ref: str) -> None:
        self._outcomes.handed_over(job, ref)

    def refused(self, job: ActiveJob, reason: str) -> None:
        self._outcomes.refused(job, reason)

    def on_report(self, backend: str, ref: str, report: StatusReport) -> None:
        self._outcomes.on_report(backend, ref, report)

    async def load_active(self) -> ActiveRows:
        return await self.store.load_active()

    def link(self, depends_on: Mapping[int, Sequence[int]], ended: EndedLookup) -> None:
        self._gate.link(depends_on, ended)

    def consider(self, job: ActiveJob) -> None:
        self._gate.consider(job)

    def schedule_retry(self, job: ActiveJob) -> None:
        self._retries.schedule(job)

    def cancel_job(self, job: ActiveJob, reason: str) -> None:
        self._cancellation.cancel_job(job, reason)

    def start_backend_cancel(self, job: ActiveJob) -> None:
        self._cancellation.start_backend_cancel(job)

    def move(self, job: ActiveJob, to: JobState, message: str | None, **values: Any) -> bool:
        return self._log.move(job, to, message, **values)

    def write(self, job_id: int, **values: Any) -> None:
        self._log.write(job_id, **values)

    async def drain(self) -> None:
        """Write every pending change now (shutdown, tests)."""
        await self._log.drain()

    def _ended(self, job: ActiveJob) -> None:
        self.active.ended(job)
        self._gate.ended(job)
