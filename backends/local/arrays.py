"""Array jobs on the local backend: one queue entry per array, tasks started in order.

An array waits in the pending queue like any job; each time it is at the
head and its next task fits, that task starts as a job of its own (its own
supervisor, run files under the task key ``<key>_<index>``, logs
``<id>_<index>.stdout``, ``GANTRY_ARRAY_INDEX`` in its environment). At its
``%K`` limit the array leaves the queue and goes back when one of its tasks
ends, so it never holds up the jobs behind it. Tasks start in ascending
index order, so the tasks an earlier server started are a prefix of the
indices (but for tasks cancelled before they started, which leave a
``.killed`` file): a restarted server re-attaches to those and starts the
rest, never one twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from gantry.backends.base import (
    ArraySpec,
    BackendStatus,
    JobSubmission,
    StatusReport,
    task_log_path,
)
from gantry.backends.local.limits import Request
from gantry.backends.local.pending import PendingQueue, Queued
from gantry.backends.local.run import Run
from gantry.backends.local.rundir import KillRecord, RunFiles

CANCEL = KillRecord("cancel")
#: watch a task an earlier server started, or report how it ended
Attach = Callable[[str, Request, RunFiles], bool]


def task_key(key: str, index: int) -> str:
    return f"{key}_{int(index)}"


def split_task_key(key: str) -> tuple[str, int] | None:
    """``("12.1", 7)`` for the task key ``12.1_7``; None for a job's own key."""
    array_key, sep, index = key.rpartition("_")
    return (array_key, int(index)) if sep and index.isdigit() else None


def task_submission(job: JobSubmission, index: int) -> JobSubmission:
    """What one task of ``job`` runs: its index in the environment, logs of its own."""
    return replace(
        job,
        env={**job.env, "GANTRY_ARRAY_INDEX": str(index)},
        stdout_path=task_log_path(job.stdout_path, index),
        stderr_path=task_log_path(job.stderr_path, index),
        array=None,
    )


@dataclass(eq=False, slots=True)
class ArrayRun:
    """One array job here: the tasks still to start, and those running."""

    job: JobSubmission
    spec: ArraySpec
    request: Request
    _left: Iterator[int]
    #: the next index to start, None once all have started
    upcoming: int | None
    running: dict[int, Run] = field(default_factory=dict)
    #: tasks cancelled before they started
    skipped: set[int] = field(default_factory=set)
    #: off the pending queue: at its limit
    parked: bool = False
    cancelled: bool = False

    @classmethod
    def create(cls, job: JobSubmission, request: Request) -> ArrayRun:
        assert job.array is not None
        left = job.array.indices()
        return cls(job, job.array, request, left, next(left, None))

    def take(self) -> int | None:
        """The next task to start (skipping cancelled ones), taken; None if none is left."""
        while self.upcoming is not None:
            index, self.upcoming = self.upcoming, next(self._left, None)
            if index not in self.skipped:
                return index
        return None

    def peek(self) -> int | None:
        while self.upcoming is not None and self.upcoming in self.skipped:
            self.upcoming = next(self._left, None)
        return self.upcoming

    def not_started(self, index: int) -> bool:
        return (
            self.upcoming is not None
            and index >= self.upcoming
            and index in self.spec
            and index not in self.skipped
        )

    def at_limit(self) -> bool:
        return self.spec.limit is not None and len(self.running) >= self.spec.limit

    def rest(self) -> Iterator[int]:
        """The tasks not started yet (taken: they will never start)."""
        while (index := self.take()) is not None:
            yield index


class LocalArrays:
    """The local backend's array jobs, by their key; tasks go through its queue and runs."""

    def __init__(
        self,
        runs_dir: Path,
        pending: PendingQueue,
        report: Callable[[str, StatusReport], None],
        kick: Callable[[], None],
    ) -> None:
        self._runs_dir = runs_dir
        self._pending = pending
        self._report = report
        self._kick = kick
        self.by_key: dict[str, ArrayRun] = {}

    def __contains__(self, key: object) -> bool:
        return key in self.by_key

    def add(self, job: JobSubmission, request: Request) -> None:
        self.by_key[job.key] = ArrayRun.create(job, request)

    def next_task(self, key: str) -> tuple[str, JobSubmission] | None:
        """The next task of the array at the head of the queue, or None: then it left the
        queue (at its limit, or all started) until one of its tasks ends."""
        array = self.by_key[key]
        index = None if array.at_limit() else array.take()
        if index is None:
            self._pending.pop()
            array.parked = True
            return None
        return task_key(key, index), task_submission(array.job, index)

    def adopt(self, job: JobSubmission, request: Request, attach: Attach) -> bool:
        """Re-attach to the tasks an earlier server started (a prefix of the indices);
        True if tasks are left to start."""
        array = self.by_key[job.key] = ArrayRun.create(job, request)
        while (index := array.peek()) is not None:
            key = task_key(job.key, index)
            files = RunFiles(self._runs_dir, key)
            if not files.launched():
                if files.read_killed() is None:
                    break  # this task never started: neither did the rest
                array.skipped.add(index)  # cancelled before it started
                continue
            array.take()
            attach(key, request, files)
        if array.peek() is None:
            self._forget_if_finished(job.key, array)
            return False
        return True

    def cancel(self, key: str) -> bool:
        """Cancel every task of an array (False: ``key`` is no array of ours)."""
        array = self.by_key.get(key)
        if array is None:
            return False
        array.cancelled = True
        self._pending.remove(key)
        for index in array.rest():
            self._cancelled_before_start(task_key(key, index))
        for run in array.running.values():
            run.request_kill(CANCEL)
        self._forget_if_finished(key, array)
        return True

    def cancel_task(self, key: str, index: int) -> None:
        array = self.by_key.get(key)
        if array is None:
            return
        run = array.running.get(index)
        if run is not None:
            run.request_kill(CANCEL)
        elif array.not_started(index):
            array.skipped.add(index)
            task = task_key(key, index)
            RunFiles(self._runs_dir, task).write_killed(CANCEL)  # a later server skips it too
            self._cancelled_before_start(task)
            self._forget_if_finished(key, array)

    def started(self, run: Run) -> None:
        task = split_task_key(run.key)
        if task is not None and task[0] in self.by_key:
            self.by_key[task[0]].running[task[1]] = run

    def ended(self, key: str) -> None:
        """Task ``key`` ended: its array may go back in the queue, or be done."""
        task = split_task_key(key)
        array = self.by_key.get(task[0]) if task is not None else None
        if task is None or array is None:
            return
        array.running.pop(task[1], None)
        if array.parked and not array.cancelled and array.peek() is not None:
            array.parked = False
            self._pending.push(Queued(array.job, array.request))
            self._kick()
        self._forget_if_finished(task[0], array)

    def _forget_if_finished(self, key: str, array: ArrayRun) -> None:
        if array.peek() is None and not array.running:
            self.by_key.pop(key, None)
            self._pending.remove(key)

    def _cancelled_before_start(self, key: str) -> None:
        self._report(
            key, StatusReport(BackendStatus.CANCELLED, reason="cancelled before it started")
        )
