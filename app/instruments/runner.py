"""One instrument job's method: its tasks on the components of one pipeline.

Tasks of one role run in order on that role's component; roles run in
parallel. ``start_with_task_name`` holds a task until the named task has
started; ``stop_with_task_name`` stops it once the named task has ended.
Each running task is drained (``task_data``) every poll interval, sooner
at first so the first samples are stored within milliseconds; its samples go
to the :class:`~gantry.instruments.data.DataStore` as they come.

A failed task fails the job (the driver's message is the reason) and stops
the other roles' tasks; a cancel stops every running task (``task_stop``
returns within one sampling interval) and keeps what was gathered. Every way
out stops what still runs and drains it, shielded, so no sample is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from gantry.backends.base import BackendStatus
from gantry.drivers.interface_2_0 import Sample, Task, TaskInfo, TaskState
from gantry.instruments.data import DataStore, TaskMeta, role_file
from gantry.instruments.host import Component, DriverHost, DriverTimeout

log = logging.getLogger(__name__)

#: The first drains come this soon after a task starts, then twice as late each time.
FIRST_POLL = 0.005
#: Default and bounds of the steady drain interval (s).
DEFAULT_POLL = 0.2
MIN_POLL = 0.05
#: A task not ended this long after max_duration is failed by gantry itself
#: (the driver runtime fails hung tasks sooner; this guards broken drivers).
WATCHDOG = 10.0
#: Bound of the clean-up calls (stop, last drain) of one task.
CLEANUP_TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class Target:
    role: str
    component: Component
    path: Path


class MethodRun:
    """Runs one job's method once; :meth:`run` returns its outcome."""

    def __init__(
        self,
        *,
        label: str,
        tasks: Sequence[Task],
        targets: Mapping[str, Target],
        host: DriverHost,
        store: DataStore,
        on_started: Callable[[float], None],
    ) -> None:
        self.label = label
        self.tasks = list(tasks)
        self.targets = targets
        self.host = host
        self.store = store
        self.on_started = on_started
        self.scope = anyio.CancelScope()
        self.cancelled = False
        self.failure: str | None = None
        self.samples = 0
        #: seconds the driver's tasks ran, summed over tasks (the job's accounting)
        self.driver_seconds = 0.0
        #: sampling ticks the components skipped because they fell behind
        self.missed = 0
        self.last_uts: float | None = None
        self._started_once = False
        names = [t.task_name for t in self.tasks if t.task_name]
        self._began = {n: anyio.Event() for n in names}
        self._ended = {n: anyio.Event() for n in names}

    def cancel(self) -> None:
        self.cancelled = True
        self.scope.cancel()

    async def run(self) -> tuple[BackendStatus, str]:
        by_role: dict[str, list[tuple[int, Task]]] = {}
        for index, task in enumerate(self.tasks):
            by_role.setdefault(task.component_role, []).append((index, task))
        with self.scope:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for role, tasks in by_role.items():
                    tg.start_soon(self._role, self.targets[role], tasks)
        if self.cancelled:
            return BackendStatus.CANCELLED, f"cancelled; {self.samples} samples kept"
        if self.failure is not None:
            return BackendStatus.FAILED, self.failure
        count = len(self.tasks)
        reason = f"{count} task{'s' if count > 1 else ''} completed, {self.samples} samples"
        if self.missed:
            reason += f", {self.missed} sampling ticks missed (a component fell behind)"
        return BackendStatus.COMPLETED, reason

    def _fail(self, message: str) -> None:
        if self.failure is None:
            self.failure = message
            log.info("instrument job %s failed: %s", self.label, message)
        self._tg.cancel_scope.cancel()

    async def _role(self, target: Target, tasks: list[tuple[int, Task]]) -> None:
        try:
            # Samples a previous user left in the cache are not this job's.
            await target.component.call("task_data")
            for index, task in tasks:
                if task.start_with_task_name:
                    await self._began[task.start_with_task_name].wait()
                await self._task(target, index, task)
        except DriverTimeout as exc:
            self._fail(f"role {target.role!r}: {exc}")
        except Exception as exc:  # a bug here or in a driver: fail the job, keep the server
            log.exception("instrument job %s: role %s crashed", self.label, target.role)
            self._fail(f"role {target.role!r}: gantry failed: {type(exc).__name__}: {exc}")

    async def _task(self, target: Target, index: int, task: Task) -> None:
        comp = target.component
        where = f"task {index} ({task.label}) on role {target.role!r}"
        reply = await comp.call("task_submit", task)
        if not reply.success:
            self._fail(f"{where}: {reply.msg}")
            return
        info: TaskInfo = reply.data
        task_id = info.id
        meta = TaskMeta(index, task.task_name, task.technique_name)
        latest = [info]
        done = anyio.Event()

        def on_change(new: TaskInfo) -> None:
            latest[0] = new
            if new.state is TaskState.RUNNING and not self._started_once:
                self._started_once = True
                self.on_started(new.started_at or time.time())
            if new.state is not TaskState.QUEUED and task.task_name:
                self._began[task.task_name].set()
            if new.state.is_final:
                done.set()

        self.host.watch(task_id, on_change)
        poll = _poll_interval(task, comp)
        deadline = anyio.current_time() + task.max_duration + WATCHDOG
        try:
            delay = FIRST_POLL
            while not done.is_set():
                with anyio.move_on_after(delay):
                    await done.wait()
                await self._drain(target, meta)
                if done.is_set():
                    break
                stop_with = task.stop_with_task_name
                if stop_with and self._ended[stop_with].is_set():
                    await comp.call("task_stop", task_id, seconds=CLEANUP_TIMEOUT)
                elif anyio.current_time() > deadline:
                    self._fail(
                        f"{where} did not end within max_duration ({task.max_duration:g} s) "
                        f"+ {WATCHDOG:g} s; the driver may be hung"
                    )
                    return
                delay = min(delay * 2, poll)
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
                if not done.is_set():
                    await comp.call("task_stop", task_id, seconds=CLEANUP_TIMEOUT)
                await self._drain(target, meta)
            self.host.unwatch(task_id)
            if task.task_name:
                self._began[task.task_name].set()
                self._ended[task.task_name].set()
        final = latest[0]
        if final.started_at is not None:
            ended = final.ended_at if final.ended_at is not None else time.time()
            self.driver_seconds += max(0.0, ended - final.started_at)
        self.missed += final.missed
        self.host.missed[comp.device.driver] += final.missed
        if final.state is TaskState.FAILED:
            self._fail(f"{where}: {final.msg}")

    async def _drain(self, target: Target, meta: TaskMeta) -> None:
        try:
            reply = await target.component.call("task_data", seconds=CLEANUP_TIMEOUT)
        except DriverTimeout:
            return
        samples: list[Sample] = reply.data if reply.success and reply.data else []
        if samples:
            self.store.append(target.path, meta, samples)
            self.samples += len(samples)
            self.host.samples[target.component.device.driver] += len(samples)
            self.last_uts = samples[-1].uts


def _poll_interval(task: Task, comp: Component) -> float:
    if task.polling_interval is not None and task.polling_interval > 0:
        return task.polling_interval
    if comp.device.pollrate is not None:
        return comp.device.pollrate
    return max(MIN_POLL, min(DEFAULT_POLL, task.sampling_interval))


def targets_for(components: Mapping[str, Component], directory: Path) -> dict[str, Target]:
    return {
        role: Target(role, comp, role_file(directory, role)) for role, comp in components.items()
    }
