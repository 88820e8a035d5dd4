"""The engine: decides what runs next and keeps every job's state true.

It knows backends only through ``gantry.backends.base`` and knows no HTTP. All its
state changes happen on the event loop, in memory first, and are written by
the :class:`~gantry.jobs.writer.Writer` (one transaction per flush, an event
row per change). Durability where it matters: the dispatch intent (a new
attempt number) is committed *before* a backend sees the job, so a crash can
never make a job run twice unnoticed (see :mod:`gantry.jobs.recovery`).

Wake-ups are events (a job was created, a job ended, a backend reported),
never a polling sleep.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from sqlalchemy import Engine as Database

from gantry.backends.base import (
    Backend,
    BackendStatus,
    JobSubmission,
    LogStream,
    StatusReport,
    default_log_path,
)
from gantry.jobs.active import ActiveJob
from gantry.jobs.dispatch import Dispatcher
from gantry.jobs.events import EventHub
from gantry.jobs.states import TERMINAL, JobState, can_move
from gantry.jobs.store import (
    Created,
    NewJob,
    Transition,
    apply_transitions,
    insert_job_groups,
    insert_jobs,
    job_states,
)
from gantry.jobs.writer import Writer

log = logging.getLogger(__name__)

#: How many ended jobs the engine remembers (for dependencies submitted later).
RECENT_FINAL = 100_000
#: Reports for refs the engine has not learnt yet (submit still in flight).
EARLY_REPORTS = 10_000
#: Variables of the server's environment a job inherits; the rest stays out.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "USER", "LOGNAME", "SHELL", "TMPDIR", "TZ")


class JobNotFound(LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class JobAlreadyEnded(RuntimeError):
    def __init__(self, job_id: int, state: str) -> None:
        super().__init__(f"job {job_id} already ended: it is {state}")
        self.job_id = job_id
        self.state = state


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():  # the caller went away; the write stands
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _ts(epoch: float | None) -> datetime:
    return datetime.fromtimestamp(epoch, UTC) if epoch else datetime.now(UTC)


class Engine:
    """Schedules jobs onto backends; one instance per server."""

    def __init__(
        self,
        *,
        writer: Writer,
        backends: dict[str, Backend],
        hub: EventHub,
        data_dir: Path,
        database: Database,
    ) -> None:
        self.writer = writer
        self.backends = backends
        self.hub = hub
        self.data_dir = data_dir
        #: where a job without a working_dir starts
        self.work_dir = data_dir / "work"
        self.database = database
        self.jobs: dict[int, ActiveJob] = {}
        self._submissions: list[tuple[Sequence[NewJob], asyncio.Future[Created]]] = []
        self._submitting = False
        #: id -> (state, name) of recently ended jobs
        self.final_states: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self._refs: dict[tuple[str, str], int] = {}
        self._early: OrderedDict[tuple[str, str], list[StatusReport]] = OrderedDict()
        self._pending: list[Transition] = []
        self._flush_wanted = anyio.Event()
        self._dispatchers: dict[str, Dispatcher] = {}
        self._tg: TaskGroup | None = None
        #: backends whose task group died, with the reason
        self.backend_errors: dict[str, str] = {}
        self._base_env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}

    # --- life cycle ----------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        from gantry.jobs.recovery import recover

        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._flusher)
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
        started = False

        async def started_once(*, task_status: TaskStatus[None]) -> None:
            await backend.run(task_status=task_status)

        try:
            async with anyio.create_task_group() as tg:
                await tg.start(started_once)
                started = True
                task_status.started()
        except Exception:
            log.exception("backend %s stopped with an error", name, extra={"backend": name})
            self.backend_errors[name] = "its task group crashed; see the server log"
            if not started:
                task_status.started()
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await backend.close()
                except Exception:
                    log.exception("backend %s failed to close", name)

    # --- submissions -----------------------------------------------------------

    async def submit(
        self, new_jobs: Sequence[NewJob], idempotency: tuple[str, str] | None = None
    ) -> Created:
        """Store jobs in one transaction; the engine takes them on at commit.

        Submissions that arrive while an earlier group is being written are
        inserted together (one INSERT per table for all of them): per-statement
        cost, not per-job cost, is what limits one-job-per-request submits.
        """
        if idempotency is not None:
            return await self.writer.execute(
                lambda conn: insert_jobs(conn, new_jobs, idempotency), self._adopt_created
            )
        future: asyncio.Future[Created] = asyncio.get_running_loop().create_future()
        self._submissions.append((new_jobs, future))
        if not self._submitting:
            self._submitting = True
            asyncio.get_running_loop().create_task(self._write_submissions())
        return await future

    async def _write_submissions(self) -> None:
        try:
            while self._submissions:
                group, self._submissions = self._submissions, []
                batches = [jobs for jobs, _ in group]
                try:
                    created = await self.writer.execute(
                        partial(insert_job_groups, groups=batches), self._adopt_all
                    )
                except Exception as exc:
                    if len(group) == 1:
                        _settle(group[0][1], exc)
                        continue
                    # One bad submission (an unknown dependency) fails alone.
                    for jobs, future in group:
                        try:
                            one = await self.writer.execute(
                                partial(insert_jobs, new_jobs=jobs), self._adopt_created
                            )
                        except Exception as error:
                            _settle(future, error)
                        else:
                            _settle(future, one)
                    continue
                for (_, future), one in zip(group, created, strict=True):
                    _settle(future, one)
        finally:
            self._submitting = False

    def _adopt_all(self, results: list[Created]) -> None:
        for created in results:
            self._adopt_created(created)

    def _adopt_created(self, created: Created) -> None:
        if created.replayed:
            return
        self.hub.publish(created.events)
        adopted = [
            ActiveJob.from_new(job_id, new)
            for job_id, new in zip(created.ids, created.new, strict=True)
        ]
        for job in adopted:
            self.jobs[job.id] = job
        doomed: list[tuple[ActiveJob, str]] = []
        for job in adopted:
            for dep_id in created.depends_on.get(job.id, ()):
                dep = self.jobs.get(dep_id)
                if dep is not None:
                    job.wait_for(dep_id)
                    dep.add_dependent(job.id)
                    continue
                state, name = self.final_states.get(dep_id) or created.dependency_states[dep_id]
                if state != JobState.COMPLETED:
                    doomed.append((job, f"dependency {dep_id} ({name}) {state}"))
        for job, reason in doomed:
            self.cancel_job(job, reason)
        chains = {name for name, b in self.backends.items() if b.supports_dependencies}
        for job in adopted:
            # A job waiting for an unfinished dependency on a backend that does
            # not chain jobs is not ready: skip the check (most of a big batch).
            if job.state is JobState.QUEUED and (not job.waiting_on or job.backend in chains):
                self.consider(job)

    # --- scheduling --------------------------------------------------------------

    def consider(self, job: ActiveJob) -> None:
        """Queue ``job`` for dispatch if nothing holds it back any more."""
        if job.state is not JobState.QUEUED or job.dispatching or job.ref is not None:
            return
        if job.not_before is not None and job.not_before > time.time():
            return  # a retry timer considers it again
        dispatcher = self._dispatchers.get(job.backend)
        if dispatcher is None:
            return  # its backend is not available; the job waits with a reason
        if all(self._dependency_allows(job, self.jobs[d]) for d in job.waiting_on):
            dispatcher.push(job)

    def _dependency_allows(self, job: ActiveJob, dep: ActiveJob) -> bool:
        """An unfinished dependency holds a job back unless the backend chains them."""
        backend = self.backends.get(job.backend)
        return (
            backend is not None
            and backend.supports_dependencies
            and dep.backend == job.backend
            and dep.ref is not None
            and not dep.dispatching
        )

    def dependency_refs(self, job: ActiveJob) -> list[str]:
        return sorted(self.jobs[d].ref or "" for d in job.waiting_on if d in self.jobs)

    def submission(self, job: ActiveJob, backend: Backend) -> JobSubmission:
        env = {
            **self._base_env,
            "GANTRY_JOB_ID": str(job.id),
            "GANTRY_JOB_NAME": job.name,
            "GANTRY_ATTEMPT": str(job.attempt),
            **job.env,
        }
        return JobSubmission(
            job_id=job.id,
            attempt=job.attempt,
            name=job.name,
            spec=job.spec or "",
            options=dict(job.options),  # the backend's own copy
            env=env,
            working_dir=Path(job.working_dir) if job.working_dir else self.work_dir,
            priority=job.priority,
            stdout_path=backend.logs(job.id, job.attempt, "stdout"),
            stderr_path=backend.logs(job.id, job.attempt, "stderr"),
            payload=job.payload,
        )

    def waker(self, backend: str) -> Any:
        """``BackendContext.wake`` for one backend (safe before the engine runs)."""

        def wake() -> None:
            dispatcher = self._dispatchers.get(backend)
            if dispatcher is not None:
                dispatcher.wake()

        return wake

    def handed_over(self, job: ActiveJob, ref: str) -> None:
        """``Backend.submit`` returned ``ref`` for ``job``."""
        job.dispatching = False
        job.in_flight = False
        job.ref = ref
        self.register_ref(job)
        if job.state is JobState.CANCELLING:
            self.write(job.id, backend_ref=ref, in_flight=False)
            self.start_backend_cancel(job)
        else:
            self.move(
                job,
                JobState.SUBMITTED,
                f"submitted to {job.backend} as {ref}",
                backend_ref=ref,
                in_flight=False,
            )
        for report in self._early.pop((job.backend, ref), []):
            self.on_report(job.backend, ref, report)
        for dependent_id in job.dependents:
            dependent = self.jobs.get(dependent_id)
            if dependent is not None:
                self.consider(dependent)

    def register_ref(self, job: ActiveJob) -> None:
        if job.ref is not None:
            self._refs[(job.backend, job.ref)] = job.id

    def refused(self, job: ActiveJob, reason: str) -> None:
        """``Backend.submit`` failed: the job fails (or ends cancelled if asked to)."""
        job.dispatching = False
        job.in_flight = False
        if job.state is JobState.CANCELLING:
            self.move(
                job, JobState.CANCELLED, job.cancel_reason, ended_at=_ts(None), in_flight=False
            )
        else:
            self.move(job, JobState.FAILED, reason, ended_at=_ts(None), in_flight=False)

    # --- reports from backends -----------------------------------------------------

    def reporter(self, backend: str) -> Any:
        def report(ref: str, status: StatusReport) -> None:
            self.on_report(backend, ref, status)

        return report

    def on_report(self, backend: str, ref: str, report: StatusReport) -> None:
        job_id = self._refs.get((backend, ref))
        job = self.jobs.get(job_id) if job_id is not None else None
        if job is None:
            if job_id is None:
                self._early.setdefault((backend, ref), []).append(report)
                while len(self._early) > EARLY_REPORTS:
                    self._early.popitem(last=False)
            return
        status = report.status
        if status is BackendStatus.UNKNOWN:
            if report.raw:
                log.warning("job %s: %s reports unknown state %r", job.label, backend, report.raw)
            return
        if status is BackendStatus.SUBMITTED:
            return  # already recorded when submit returned
        if status is BackendStatus.RUNNING:
            if job.state in (JobState.QUEUED, JobState.SUBMITTED):
                self.move(
                    job,
                    JobState.RUNNING,
                    report.reason or f"running on {backend}",
                    started_at=_ts(report.started_at),
                )
            return
        self._ended(job, report)

    def _ended(self, job: ActiveJob, report: StatusReport) -> None:
        values: dict[str, Any] = {"exit_code": report.exit_code, "ended_at": _ts(report.ended_at)}
        if report.started_at and job.state is not JobState.RUNNING:
            values["started_at"] = _ts(report.started_at)
        if report.status is BackendStatus.COMPLETED:
            self.move(job, JobState.COMPLETED, report.reason or "exited 0", **values)
        elif job.state is JobState.CANCELLING:
            self.move(job, JobState.CANCELLED, job.cancel_reason or report.reason, **values)
        elif report.status is BackendStatus.CANCELLED:
            self.move(
                job, JobState.CANCELLED, report.reason or f"cancelled by {job.backend}", **values
            )
        else:
            reason = report.reason or (
                f"exited {report.exit_code}" if report.exit_code is not None else "failed"
            )
            if job.attempt <= job.max_retries:
                self._retry(job, reason, report.exit_code)
            else:
                self.move(job, JobState.FAILED, reason, **values)

    def _retry(self, job: ActiveJob, reason: str, exit_code: int | None) -> None:
        """Queue a failed attempt again after an exponential backoff."""
        delay = job.retry_delay * 2 ** (job.attempt - 1)
        message = (
            f"attempt {job.attempt} failed ({reason}); retry {job.attempt} of "
            f"{job.max_retries} in {delay:g} s"
        )
        if job.ref is not None:
            self._refs.pop((job.backend, job.ref), None)
        job.ref = None
        job.not_before = time.time() + delay
        self.move(
            job,
            JobState.QUEUED,
            message,
            backend_ref=None,
            exit_code=exit_code,
            not_before=_ts(job.not_before),
        )
        self.schedule_retry(job)

    def schedule_retry(self, job: ActiveJob) -> None:
        if self._tg is None or job.not_before is None:
            return
        wait = max(0.0, job.not_before - time.time())

        async def later() -> None:
            await anyio.sleep(wait)
            job.not_before = None
            if self.jobs.get(job.id) is job:
                self.consider(job)

        self._tg.start_soon(later)

    # --- what the API asks -----------------------------------------------------------

    def log_path(self, job_id: int, backend: str, attempt: int, stream: LogStream) -> Path:
        """Where one attempt's log is; ended jobs of a removed backend use the default."""
        instance = self.backends.get(backend)
        if instance is not None:
            return instance.logs(job_id, max(attempt, 1), stream)
        return default_log_path(self.data_dir / "logs", job_id, max(attempt, 1), stream)

    def is_active(self, job_id: int) -> bool:
        return job_id in self.jobs

    # --- cancellation -------------------------------------------------------------------

    async def cancel(self, job_id: int, reason: str = "cancelled by request") -> str:
        """Cancel a job; idempotent while it runs. Returns its state now."""
        job = self.jobs.get(job_id)
        if job is None:
            known = self.final_states.get(job_id)
            if known is None:
                known = (await anyio.to_thread.run_sync(self._read_state, job_id)).get(job_id)
            if known is None:
                raise JobNotFound(job_id)
            job = self.jobs.get(job_id)  # it may have been created meanwhile
            if job is None:
                raise JobAlreadyEnded(job_id, known[0])
        self.cancel_job(job, reason)
        return job.state.value

    def _read_state(self, job_id: int) -> dict[int, tuple[str, str]]:
        with self.database.connect() as conn:
            return job_states(conn, [job_id])

    def cancel_job(self, job: ActiveJob, reason: str) -> None:
        if job.state is JobState.CANCELLING or job.state in TERMINAL:
            return
        dispatched = job.ref is not None or job.dispatching
        self.move(job, JobState.CANCELLING, reason)
        job.cancel_reason = reason
        if not dispatched:
            self.move(job, JobState.CANCELLED, reason, ended_at=_ts(None))
        elif job.ref is not None:
            self.start_backend_cancel(job)
        # else: submit is in flight; handed_over() or refused() finishes it

    def start_backend_cancel(self, job: ActiveJob) -> None:
        backend = self.backends.get(job.backend)
        if backend is None or job.ref is None or self._tg is None:
            return
        ref = job.ref

        async def cancel() -> None:
            try:
                await backend.cancel(ref)
            except Exception as exc:
                log.warning("job %s: %s could not cancel %s: %s", job.label, job.backend, ref, exc)

        self._tg.start_soon(cancel)

    # --- state changes -------------------------------------------------------------------

    def move(self, job: ActiveJob, to: JobState, message: str | None, **values: Any) -> bool:
        """Change a job's state in memory and queue its write; False if not allowed."""
        if not can_move(job.state, to):
            log.debug("job %s: ignoring %s -> %s", job.label, job.state, to)
            return False
        if to.is_terminal or message is not None:
            values.setdefault("reason", message)
        self._pending.append(Transition(job.id, job.state.value, to.value, message, values))
        job.state = to
        self._flush_wanted.set()
        if to.is_terminal:
            self._finished(job)
        return True

    def write(self, job_id: int, **values: Any) -> None:
        """Queue a column change that is not a state change (no event)."""
        self._pending.append(Transition(job_id, None, None, None, values))
        self._flush_wanted.set()

    def _finished(self, job: ActiveJob) -> None:
        self.jobs.pop(job.id, None)
        if job.ref is not None:
            self._refs.pop((job.backend, job.ref), None)
        self.final_states[job.id] = (job.state.value, job.name)
        while len(self.final_states) > RECENT_FINAL:
            self.final_states.popitem(last=False)
        for dependent_id in sorted(job.dependents):
            dependent = self.jobs.get(dependent_id)
            if dependent is None:
                continue
            dependent.stop_waiting_for(job.id)
            if job.state is JobState.COMPLETED:
                self.consider(dependent)
            else:
                self.cancel_job(dependent, f"dependency {job.label} {job.state.value}")

    async def _flusher(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted = anyio.Event()
            batch, self._pending = self._pending, []
            if batch:
                await self.flush(batch)

    async def flush(self, batch: list[Transition]) -> None:
        try:
            await self.writer.execute(lambda conn: apply_transitions(conn, batch), self.hub.publish)
        except Exception:
            log.exception("could not write %d state changes", len(batch))

    async def drain(self) -> None:
        """Write every pending change now (shutdown, tests)."""
        batch, self._pending = self._pending, []
        if batch:
            await self.flush(batch)
