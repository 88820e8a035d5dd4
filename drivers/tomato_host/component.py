"""One tomato component seen from gantry: task ids, states, and a loss-free data cache.

tomato queues tasks without ids and reports only "running or not"; its own
thread runs the task and caches data as an ``xarray.Dataset``. gantry gives
every task an id and a state, so each :class:`Slot` hands tomato one task at
a time and watches tomato's thread (hooks on the device's ``prepare_task`` and
``do_task`` say when the task began and what it raised). Data is drained under
one lock per component; what ``task_stop`` returns, and what is left when a
task ends, waits in ``pending`` for the next ``task_data``, so no point is lost.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from gantry.drivers.interface_2_0.device import describe
from gantry.drivers.interface_2_0.run import TaskRun
from gantry.drivers.tomato_host.calls import blocking, call
from gantry.drivers.tomato_host.convert import SampleMaker
from gantry.drivers.types import Key, Sample, TaskInfo, TaskState

logger = logging.getLogger(__name__)

#: Seconds tomato's thread may overrun ``max_duration`` before the task fails as hung
#: (its loop checks every 10-200 ms; preparation counts too).
GRACE = 5.0
#: How often an ending task is looked for, at most and at least, near its expected end;
#: further from it (tomato's thread signals nothing, so it is polled) every WATCH_FAR s.
#: A stop wakes the watch at once.
WATCH_MAX, WATCH_MIN, WATCH_FAR = 0.05, 0.01, 0.5


@dataclass(eq=False)
class Slot:
    """gantry's book-keeping for one component of a tomato driver."""

    key: Key
    driver: Any  # tomato's DriverInterface instance
    report: Callable[[TaskInfo], None]
    limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))
    drain_lock: anyio.Lock = field(default_factory=anyio.Lock)
    queue: deque[TaskRun] = field(default_factory=deque)
    runs: dict[str, TaskRun] = field(default_factory=dict)
    current: TaskRun | None = None
    pending: list[Sample] = field(default_factory=list)
    maker: SampleMaker = field(default_factory=SampleMaker)
    #: written by tomato's task thread: the current task began / what it raised
    entered: bool = False
    failure: str | None = None
    wake: anyio.Event = field(default_factory=anyio.Event)
    #: set by a stop: the watch of the running task looks at once
    poke: anyio.Event = field(default_factory=anyio.Event)

    @property
    def device(self) -> Any:
        return self.driver.devmap[self.key]

    def kwargs(self) -> dict[str, Any]:
        return {"address": self.key[0], "channel": self.key[1]}

    def hook(self) -> None:
        """Wrap this device's ``prepare_task``/``do_task`` to see its thread's progress."""
        dev = self.device
        prepare, step = dev.prepare_task, dev.do_task

        def prepare_task(*args: Any, **kwargs: Any) -> Any:
            self.entered = True
            try:
                return prepare(*args, **kwargs)
            except Exception as exc:
                self.failure = f"preparing the task failed: {describe(exc)}"
                raise

        def do_task(*args: Any, **kwargs: Any) -> Any:
            try:
                return step(*args, **kwargs)
            except Exception as exc:
                self.failure = f"the task failed: {describe(exc)}"
                raise

        dev.prepare_task, dev.do_task = prepare_task, do_task

    # -- data --------------------------------------------------------------------

    async def drain(self) -> list[Sample]:
        """Everything not handed over yet: ``pending`` first, then tomato's cache."""
        async with self.drain_lock:
            reply = await call(self.limiter, self.driver.task_data, **self.kwargs())
            self._keep(reply.data if reply.success else None)
            out, self.pending = self.pending, []
        return out

    async def stop_tomato(self) -> None:
        """tomato's ``task_stop``; the data it hands back is kept for the next drain."""
        async with self.drain_lock:
            reply = await call(self.limiter, self.driver.task_stop, **self.kwargs())
            self._keep(reply.data if reply.success else None)

    def _keep(self, data: Any) -> None:
        run = self.current
        found = self.maker.samples(data, run.id if run else None)
        if run is not None:
            run.samples += len(found)
        self.pending.extend(found)

    # -- tasks -------------------------------------------------------------------

    def submit(self, run: TaskRun) -> None:
        self.runs[run.id] = run
        self.queue.append(run)
        self.wake.set()

    async def serve(self) -> None:
        """Run queued tasks one at a time, forever."""
        while True:
            while not self.queue:
                self.wake = anyio.Event()
                await self.wake.wait()
            run = self.queue.popleft()
            self.current = run
            try:
                await self._execute(run)
            except anyio.get_cancelled_exc_class():
                run.finish(
                    TaskState.FAILED, f"{self._label(run)} was interrupted: the driver stopped"
                )
                raise
            except Exception as exc:
                logger.warning("%s failed", self._label(run), exc_info=True)
                run.finish(TaskState.FAILED, f"{self._label(run)} failed: {describe(exc)}")
            finally:
                self.current = None
                self.report(run.info())

    async def _execute(self, run: TaskRun) -> None:
        label = self._label(run)
        await self._revive()
        self.entered, self.failure = False, None
        # RUNNING before the call: a stop meanwhile queues behind it on the limiter.
        run.state, run.started_at = TaskState.RUNNING, time.time()
        task = tomato_task_of(run)
        reply = await call(self.limiter, self.driver.task_start, task=task, **self.kwargs())
        if not reply.success:
            run.finish(TaskState.FAILED, f"{label} was refused by the driver: {reply.msg}")
            return
        self.report(run.info())
        interval = run.task.sampling_interval
        began = anyio.current_time()
        expected = began + run.task.max_duration
        deadline = expected + interval + GRACE
        near = max(WATCH_MIN, min(WATCH_MAX, interval / 2))
        hung = False
        self.poke = anyio.Event()
        while not self._ended():
            now = anyio.current_time()
            if now > deadline:
                hung = True
                await self.stop_tomato()
                break
            # Sparse polls while the task has long to go: 10 components at 10 Hz would
            # otherwise wake the loop 200 times a second for nothing.
            soon = run.stop_requested or expected - now < 2 * WATCH_FAR
            step = near if soon else WATCH_FAR
            with anyio.move_on_after(step):
                await self.poke.wait()
            if self.poke.is_set():
                self.poke = anyio.Event()
        async with self.drain_lock:  # the tail of the cache, tagged with this task
            tail = await call(self.limiter, self.driver.task_data, **self.kwargs())
            self._keep(tail.data if tail.success else None)
        if self.failure is not None:
            run.finish(TaskState.FAILED, f"{label} failed in the driver: {self.failure}")
        elif hung:
            run.finish(
                TaskState.FAILED,
                f"{label} did not finish within max_duration ({run.task.max_duration:g} s) + "
                f"{interval + GRACE:g} s; the device may be hung",
            )
        elif not self.entered:
            run.finish(
                TaskState.FAILED,
                f"{label} never started: the driver's task thread stopped; see the driver log",
            )
        elif run.stop_requested:
            run.finish(TaskState.STOPPED, f"{label} stopped after {run.samples} samples")
        else:
            run.finish(TaskState.COMPLETED, f"{label} completed, {run.samples} samples")

    def _ended(self) -> bool:
        dev = self.device
        if self.entered:
            return not dev.running
        # tomato 2.1 keeps one thread per component; if it died, nobody takes the task.
        thread = getattr(dev, "thread", None)
        return self.driver.version != "2.0" and thread is not None and not thread.is_alive()

    async def _revive(self) -> None:
        """tomato 2.1's task thread quits on an error; a component reset starts a new one."""
        thread = getattr(self.device, "thread", None)
        if self.driver.version != "2.0" and thread is not None and not thread.is_alive():
            logger.warning("task thread of component %s had stopped; resetting it", self.key)
            await blocking(self.limiter, self.driver.cmp_reset, **self.kwargs())

    async def stop(self, run: TaskRun) -> None:
        """Stop ``run`` (queued or running) and wait, boundedly, until it ended."""
        if run.state is TaskState.QUEUED:
            self.queue.remove(run)
            run.finish(TaskState.STOPPED, f"{self._label(run)} stopped before it started")
            self.report(run.info())
            return
        if run.state is TaskState.RUNNING:
            run.stop_requested = True
            await self.stop_tomato()
            self.poke.set()
            with anyio.move_on_after(run.task.sampling_interval + GRACE):
                await run.done.wait()

    async def stop_all(self) -> None:
        """Drop queued tasks and stop the running one (a reset, a teardown)."""
        for run in list(self.queue):
            await self.stop(run)
        if self.current is not None:
            await self.stop(self.current)

    def _label(self, run: TaskRun) -> str:
        return f"task {run.task.label} on component {self.key}"


def tomato_task_of(run: TaskRun) -> Any:
    """gantry's Task as tomato's (the payload model tomato itself validates)."""
    # Looked up here: tomato is installed wherever a tomato driver is, not always.
    task_model = importlib.import_module("tomato.models").Task
    return task_model(**run.task.model_dump(exclude_none=True))
