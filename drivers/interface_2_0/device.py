"""``ModelDevice``: one component, its task queue, its worker and its data cache."""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, TypeVar, TypeVarTuple, Unpack

import anyio

from gantry.drivers.errors import DriverError, TaskTimeout
from gantry.drivers.interface_2_0.run import TaskRun
from gantry.drivers.types import Attr, Key, Sample, Task, TaskInfo, TaskState, Value


class TaskReporter(Protocol):
    """What a component needs of its driver: somewhere to report task changes.

    ``ModelInterface`` is one; the seam keeps device.py from importing it.
    """

    def report_task(self, info: TaskInfo) -> None: ...


logger = logging.getLogger(__name__)

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def describe(exc: BaseException) -> str:
    """``"ValueError: bad reading"``; the type alone if there is no message."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ModelDevice(ABC):
    """A manager for one component: what it can do, its settings, its tasks, its data.

    A driver implements :meth:`attrs`, :meth:`capabilities`, :meth:`get_attr`,
    :meth:`set_attr` and :meth:`do_measure`, and overrides :meth:`do_task` when
    a technique is more than "measure once per tick". Everything else (the
    task queue, the drift-free sampling loop, timeouts, the data cache) is
    inherited.

    Blocking hardware I/O must go through :meth:`run_sync`: it runs in a
    thread, one call at a time per component, and can be abandoned if it hangs.
    """

    #: Seconds a task may overrun ``max_duration`` (a hung step) before it fails;
    #: also the time a step in progress gets to finish after ``task_stop``.
    grace_period: ClassVar[float] = 1.0
    #: Seconds a component may fall behind its sampling clock and catch up;
    #: further behind, it skips ticks (counted in ``TaskInfo.missed``).
    max_lag: ClassVar[float] = 0.5
    #: Seconds a one-shot :meth:`measure` may take.
    measure_timeout: ClassVar[float] = 10.0
    #: How many finished tasks ``task_status`` can still report by id.
    history: ClassVar[int] = 100

    def __init__(self, driver: TaskReporter, key: Key, **kwargs: Any) -> None:
        self.driver = driver
        self.key = key
        #: constant metadata of this component (serial number, model, ...)
        self.constants: dict[str, Any] = {}
        #: samples not yet drained by :meth:`get_data`; guarded by ``datalock``
        self.data: list[Sample] = []
        self.last_data: Sample | None = None
        # Re-entrant so a driver may hold it around store(); a threading lock
        # because vendor callbacks may store from their own threads.
        self.datalock = threading.RLock()
        self.task_list: deque[TaskRun] = deque()
        self.current: TaskRun | None = None
        self.runs: dict[str, TaskRun] = {}
        self.units: dict[str, str] = {}
        self._wake: anyio.Event | None = None
        self._limiter: anyio.CapacityLimiter | None = None

    # -- what a driver implements -------------------------------------------

    @abstractmethod
    def attrs(self) -> dict[str, Attr]:
        """All attributes of this component, by name."""

    @abstractmethod
    def capabilities(self) -> set[str]:
        """The technique names this component can run."""

    @abstractmethod
    async def get_attr(self, attr: str) -> Any:
        """Read one attribute (already checked to exist)."""

    @abstractmethod
    async def set_attr(self, attr: str, val: Any) -> None:
        """Write one attribute; ``val`` is already validated and in the attr's units."""

    @abstractmethod
    async def do_measure(self) -> dict[str, Value]:
        """One reading with the current settings, as named values."""

    async def do_task(self, task: Task, *, t_start: float, t_now: float) -> None:
        """One sampling step of ``task``: take readings and :meth:`store` them.

        ``t_start`` and ``t_now`` are ``anyio.current_time()`` values: the
        task's start and this tick's scheduled time. The default stores one
        :meth:`do_measure`.
        """
        self.store(await self.do_measure())

    async def prepare_task(self, task: Task) -> None:
        """Apply the task's (validated) params before its first tick."""
        for name, val in task.task_params.items():
            await self.set_attr(name, val)

    async def reset(self) -> None:
        """Back to a safe, idle state: stop the task and drop queued ones.

        Cached samples are kept: only :meth:`get_data` removes data, so a reset
        (or a shutdown) never loses what the server has not drained yet.
        Drivers override this to also put the hardware in a safe state, and
        call ``await super().reset()``.
        """
        for run in self.task_list:
            run.finish(TaskState.STOPPED, f"task {run.task.label} dropped by a reset")
            self.driver.report_task(run.info())
        self.task_list.clear()
        if self.current is not None:
            await self.stop(self.current)

    # -- helpers for drivers --------------------------------------------------

    async def run_sync(self, func: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
        """Run blocking I/O in a thread, one call at a time for this component.

        If the caller is cancelled (task stop, timeout) the thread is
        abandoned rather than awaited, so a hung call cannot hang the task.
        """
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(
            func, *args, abandon_on_cancel=True, limiter=self._limiter
        )

    def store(self, values: dict[str, Value], uts: float | None = None) -> Sample:
        """Append one sample to the cache (and make it the last data).

        ``values`` is kept as given: pass a new dict for every sample.
        """
        run = self.current
        sample = Sample(
            time.time() if uts is None else uts, values, self.units, run.id if run else None
        )
        with self.datalock:
            self.data.append(sample)
            self.last_data = sample
            if run is not None:
                run.samples += 1
        return sample

    def units_map(self) -> dict[str, str]:
        """Units of every attribute that has them, attached to each sample."""
        return {name: a.units for name, a in self.attrs().items() if a.units}

    # -- inherited behaviour ----------------------------------------------------

    def get_data(self) -> list[Sample]:
        """Drain the cache: the samples stored since the last call."""
        with self.datalock:
            data, self.data = self.data, []
        return data

    def get_last_data(self) -> Sample | None:
        return self.last_data

    async def status(self) -> dict[str, Any]:
        """Values of the ``status`` attributes."""
        return {name: await self.get_attr(name) for name, a in self.attrs().items() if a.status}

    async def measure(self) -> Sample:
        """One reading outside any task; becomes the last data, not cached data."""
        if self.current is not None:
            raise DriverError(f"component {self.key} is running a task; measure when it is idle")
        self.units = self.units_map()
        with anyio.move_on_after(self.measure_timeout) as scope:
            values = await self.do_measure()
        if scope.cancelled_caught:
            raise TaskTimeout(
                f"measurement on component {self.key} took longer than "
                f"{self.measure_timeout} s; the device may be hung"
            )
        sample = Sample(time.time(), values, self.units)
        with self.datalock:
            self.last_data = sample
        return sample

    def submit(self, run: TaskRun) -> None:
        self.runs[run.id] = run
        self.task_list.append(run)
        if self._wake is not None:
            self._wake.set()
        self._forget_old_runs()

    async def stop(self, run: TaskRun) -> None:
        """Stop ``run`` (queued or running) and wait, boundedly, until it ended."""
        if run.state is TaskState.QUEUED:
            self.task_list.remove(run)
            run.finish(TaskState.STOPPED, f"task {run.task.label} stopped before it started")
            self.driver.report_task(run.info())
            return
        if run.state is TaskState.RUNNING:
            run.request_stop(self.grace_period)
            with anyio.move_on_after(run.task.sampling_interval + 2 * self.grace_period):
                await run.done.wait()

    async def serve(self) -> None:
        """The worker: run queued tasks one at a time, forever."""
        while True:
            while not self.task_list:
                self._wake = anyio.Event()
                await self._wake.wait()
            await self._execute(self.task_list.popleft())

    async def task_runner(self, run: TaskRun) -> None:
        """Prepare, then call :meth:`do_task` every ``sampling_interval`` until done.

        The whole run is bounded by ``max_duration + grace_period`` (counted
        from the first tick), so a hung step or preparation fails the task.
        """
        task = run.task
        duration = task.max_duration
        with anyio.move_on_after(duration + self.grace_period) as scope:
            run.scope = scope
            await self.prepare_task(task)
            self.units = self.units_map()
            start = anyio.current_time()
            if not run.stop_requested:
                scope.deadline = start + duration + self.grace_period
                await self._sample(run, start)
            if not run.stop_requested:
                await run.sleep_until(start + duration)
        if scope.cancelled_caught and not run.stop_requested:
            raise TaskTimeout(
                f"task {task.label} on component {self.key} did not finish within "
                f"max_duration ({duration} s) + grace ({self.grace_period} s); "
                "the device may be hung"
            )

    async def _sample(self, run: TaskRun, start: float) -> None:
        """Run tick ``k`` at ``start + k * interval``: an absolute clock, no drift.

        A late tick runs at once, so a short stall (GC, a busy machine) loses
        no sample. Beyond ``max(interval, max_lag)`` behind, ticks are skipped
        and counted instead of fired in a burst with meaningless timestamps;
        ticks still due when ``max_duration`` is over are counted missed too.
        """
        task = run.task
        interval = task.sampling_interval
        end = start + task.max_duration
        ticks = math.ceil(task.max_duration / interval - 1e-9)
        lag_limit = max(interval, self.max_lag)
        k = 0
        while k < ticks and not run.stop_requested:
            due = start + k * interval
            await run.sleep_until(due)
            await self.do_task(task, t_start=start, t_now=due)
            k += 1
            now = anyio.current_time()
            if now >= end:
                break
            behind = now - (start + k * interval)
            if behind > lag_limit:
                skipped = min(int(behind // interval), ticks - k)
                k += skipped
                run.missed += skipped
        if not run.stop_requested:
            run.missed += ticks - k

    async def _execute(self, run: TaskRun) -> None:
        label = f"task {run.task.label} on component {self.key}"
        self.current = run
        run.state, run.started_at = TaskState.RUNNING, time.time()
        self.driver.report_task(run.info())
        try:
            await self.task_runner(run)
        except anyio.get_cancelled_exc_class():
            run.finish(TaskState.FAILED, f"{label} was interrupted: the driver stopped")
            raise
        except Exception as exc:
            logger.warning("%s failed", label, exc_info=True)
            run.finish(TaskState.FAILED, f"{label} failed: {describe(exc)}")
        else:
            if run.stop_requested:
                run.finish(TaskState.STOPPED, f"{label} stopped after {run.samples} samples")
            else:
                run.finish(TaskState.COMPLETED, f"{label} completed, {run.samples} samples")
        finally:
            self.current = None
            run.scope = None
            self.driver.report_task(run.info())

    def _forget_old_runs(self) -> None:
        excess = len(self.runs) - self.history
        if excess <= 0:
            return
        for run_id in [i for i, r in self.runs.items() if r.state.is_final][:excess]:
            del self.runs[run_id]
