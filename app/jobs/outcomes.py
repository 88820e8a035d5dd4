"""What backends say about jobs: the answer to ``submit``, and status reports."""

from __future__ import annotations

import logging
import time
from typing import Any

from gantry.backends.base import BackendStatus, StatusReport
from gantry.jobs.accounting import accounting_values
from gantry.jobs.active import ActiveJob
from gantry.jobs.cancellation import Cancellation
from gantry.jobs.gating import Gate
from gantry.jobs.meter import Meter
from gantry.jobs.registry import ActiveJobs
from gantry.jobs.retries import Retries
from gantry.jobs.statelog import StateLog
from gantry.jobs.states import JobState
from gantry.jobs.tasks import TaskOutcomes
from gantry.jobs.times import utc

log = logging.getLogger(__name__)


class Outcomes:
    def __init__(
        self,
        active: ActiveJobs,
        state_log: StateLog,
        cancellation: Cancellation,
        retries: Retries,
        gate: Gate,
        meter: Meter,
    ) -> None:
        self._active = active
        self._log = state_log
        self._cancellation = cancellation
        self._retries = retries
        self._gate = gate
        self._meter = meter
        self._tasks = TaskOutcomes(state_log)

    def handed_over(self, job: ActiveJob, ref: str) -> None:
        """``Backend.submit`` returned ``ref`` for ``job``."""
        job.dispatching = False
        job.in_flight = False
        job.ref = ref
        self._active.register_ref(job)
        if job.state is JobState.CANCELLING:
            self._log.write(job.id, backend_ref=ref, in_flight=False)
            self._cancellation.start_backend_cancel(job)
        else:
            self._log.move(
                job,
                JobState.SUBMITTED,
                f"submitted to {job.backend} as {ref}",
                backend_ref=ref,
                in_flight=False,
            )
        for report in self._active.early_reports(job.backend, ref):
            self.on_report(job.backend, ref, report)
        self._gate.handed_over(job)

    def refused(self, job: ActiveJob, reason: str) -> None:
        """The job could not be handed over: it fails (or ends cancelled if asked to)."""
        job.dispatching = False
        job.in_flight = False
        if job.state is JobState.CANCELLING:
            self._log.move(
                job, JobState.CANCELLED, job.cancel_reason, ended_at=utc(None), in_flight=False
            )
        else:
            self._log.move(job, JobState.FAILED, reason, ended_at=utc(None), in_flight=False)

    def on_report(self, backend: str, ref: str, report: StatusReport) -> None:
        job = self._active.for_report(backend, ref, report)
        if job is None:
            return
        if report.task is not None:
            self._tasks.on_report(job, report)
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
                started = report.started_at or time.time()
                self._meter.started(backend, started - job.created)
                self._log.move(
                    job,
                    JobState.RUNNING,
                    report.reason or f"running on {backend}",
                    started_at=utc(started),
                )
            return
        self._ended(job, report)

    def _ended(self, job: ActiveJob, report: StatusReport) -> None:
        values: dict[str, Any] = {"exit_code": report.exit_code, "ended_at": utc(report.ended_at)}
        values.update(accounting_values(report.accounting))
        if report.started_at and job.state is not JobState.RUNNING:
            values["started_at"] = utc(report.started_at)
            if job.state is not JobState.CANCELLING:  # it ran, unseen: between two polls
                self._meter.started(job.backend, report.started_at - job.created)
        if report.status is BackendStatus.COMPLETED:
            self._log.move(job, JobState.COMPLETED, report.reason or "exited 0", **values)
        elif job.state is JobState.CANCELLING:
            self._log.move(job, JobState.CANCELLED, job.cancel_reason or report.reason, **values)
        elif report.status is BackendStatus.CANCELLED:
            reason = report.reason or f"cancelled by {job.backend}"
            self._log.move(job, JobState.CANCELLED, reason, **values)
        else:
            reason = report.reason or (
                f"exited {report.exit_code}" if report.exit_code is not None else "failed"
            )
            if self._retries.allowed(job):
                self._retries.retry(job, reason, report.exit_code)
            else:
                self._log.move(job, JobState.FAILED, reason, **values)
