"""The tasks of array jobs: what their reports mean, and the array's derived state.

A backend that ``supports_arrays`` runs an array's tasks itself and reports
each with ``StatusReport.task``. Each task's start and end is one
``array_task`` row; the array job itself moves with them: ``running`` with
its first task, and once every task ended, ``completed`` if all completed,
``cancelled`` if the array was cancelled, else ``failed`` naming the first
task that failed. That end is an ordinary job end: ``afterok`` dependents
of an array wait for all its tasks, and are cancelled if one failed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from gantry.backends.base import BackendStatus, StatusReport
from gantry.jobs.accounting import accounting_values
from gantry.jobs.active import ActiveJob
from gantry.jobs.statelog import StateLog
from gantry.jobs.states import JobState
from gantry.jobs.taskstate import TaskProgress
from gantry.jobs.times import utc

_ENDED = {
    BackendStatus.COMPLETED: JobState.COMPLETED,
    BackendStatus.FAILED: JobState.FAILED,
    BackendStatus.CANCELLED: JobState.CANCELLED,
}
#: what a task row records of an accounting (instrument fields are the job's)
_TASK_ACCOUNTING = ("cpu_user_seconds", "cpu_system_seconds", "max_rss_bytes", "wall_seconds")


class TaskOutcomes:
    def __init__(self, state_log: StateLog) -> None:
        self._log = state_log

    def on_report(self, job: ActiveJob, report: StatusReport) -> None:
        """A report about task ``report.task`` of ``job``; repeats are ignored."""
        progress, index = job.tasks, report.task
        if progress is None or index is None or index in progress.ended:
            return
        if report.status is BackendStatus.RUNNING:
            if index not in progress.running:
                progress.running.add(index)
                started = utc(report.started_at)
                self._log.write_task(job.id, index, state="running", started_at=started)
                if job.state in (JobState.QUEUED, JobState.SUBMITTED):
                    self._log.move(
                        job, JobState.RUNNING, f"task {index} running", started_at=started
                    )
            return
        ended = _ENDED.get(report.status)
        if ended is not None:
            self._task_ended(job, progress, index, ended, report)

    def _task_ended(
        self,
        job: ActiveJob,
        progress: TaskProgress,
        index: int,
        state: JobState,
        report: StatusReport,
    ) -> None:
        progress.running.discard(index)
        progress.ended[index] = state.value
        measured = accounting_values(report.accounting)
        values: dict[str, Any] = {
            "state": state.value,
            "exit_code": report.exit_code,
            "reason": report.reason,
            "ended_at": utc(report.ended_at),
            **{key: measured[key] for key in _TASK_ACCOUNTING if key in measured},
        }
        if report.started_at is not None:
            values["started_at"] = utc(report.started_at)
        self._log.write_task(job.id, index, **values)
        progress.add_cost(
            values.get("cpu_user_seconds"),
            values.get("cpu_system_seconds"),
            values.get("max_rss_bytes"),
        )
        if state is JobState.FAILED and progress.first_failure is None:
            progress.first_failure = f"task {index}: {report.reason or 'failed'}"
        if len(progress.ended) >= progress.count:
            self._array_ended(job, progress)

    def _array_ended(self, job: ActiveJob, progress: TaskProgress) -> None:
        """The array's end, with its tasks' costs as its own accounting (for /stats)."""
        counts = Counter(progress.ended.values())
        total = progress.count
        values = {"ended_at": utc(None), **progress.cost()}
        if counts[JobState.COMPLETED.value] == total:
            self._log.move(job, JobState.COMPLETED, f"all {total} tasks completed", **values)
        elif job.state is JobState.CANCELLING:
            self._log.move(job, JobState.CANCELLED, job.cancel_reason, **values)
        else:
            failed, cancelled = counts[JobState.FAILED.value], counts[JobState.CANCELLED.value]
            parts = [f"{failed} of {total} tasks failed"] if failed else []
            if cancelled:
                parts.append(f"{cancelled} of {total} tasks cancelled")
            first = f" (first: {progress.first_failure})" if progress.first_failure else ""
            self._log.move(job, JobState.FAILED, ", ".join(parts) + first, **values)
