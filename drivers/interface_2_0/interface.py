"""``ModelInterface``: the driver, a map of components and the calls the server makes."""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, ClassVar, ParamSpec, Protocol

import anyio
from anyio.abc import TaskGroup, TaskStatus
from pydantic import ValidationError

from gantry.drivers.errors import DriverError
from gantry.drivers.interface_2_0.device import ModelDevice, describe
from gantry.drivers.interface_2_0.run import TaskRun
from gantry.drivers.types import Key, Reply, Task, TaskInfo
from gantry.drivers.units import coerce_param
from gantry.drivers.validation import validate_task

logger = logging.getLogger(__name__)

P = ParamSpec("P")


class TaskListener(Protocol):
    """Told of every task state change (running, completed, failed, stopped). Never blocks."""

    def __call__(self, info: TaskInfo) -> None: ...


def replies(func: Callable[P, Awaitable[Reply]]) -> Callable[P, Coroutine[Any, Any, Reply]]:
    """Turn any exception of a contract call into a failed Reply naming the call."""

    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> Reply:
        try:
            return await func(*args, **kwargs)
        except DriverError as exc:
            return Reply(success=False, msg=str(exc))
        except Exception as exc:
            # A bug or a hardware fault inside the driver: keep the server up.
            logger.exception("driver call %s failed", func.__qualname__)
            return Reply(success=False, msg=f"{func.__name__} failed: {describe(exc)}")

    return wrapper


class ModelInterface(ABC):
    """The async form of tomato's DriverInterface 2.x.

    A driver module exposes ``DriverInterface``, a subclass implementing
    :meth:`DeviceFactory`. Every public ``cmp_*``/``task_*`` call and
    :meth:`status`/:meth:`reset` returns a :class:`Reply`; a bad call gives a
    failed Reply with a message, never an exception. Components are keyed by
    ``(address, channel)``.

    Lifecycle inside the server::

        driver = DriverInterface(settings)            # cheap; no I/O
        await driver.cmp_register(address, channel)   # before or after run
        await tg.start(driver.run)                    # one worker per component
        await driver.task_submit(address, channel, task)
        await driver.task_data(address, channel)      # drain samples
        await driver.task_stop(address, channel)
    """

    version: ClassVar[str] = "2.0"
    #: True: the server runs this driver inside its own process instead of in a
    #: driver process of its own (a devices file's ``[drivers.<name>]`` may override).
    in_process: ClassVar[bool] = False

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        on_task_change: TaskListener | None = None,
    ) -> None:
        #: driver-specific settings (a DLL path, a serial baud rate ...)
        self.settings: dict[str, Any] = dict(settings or {})
        #: driver-wide constants, merged into every ``cmp_constants``
        self.constants: dict[str, Any] = {}
        self.devmap: dict[Key, ModelDevice] = {}
        self.on_task_change = on_task_change
        self._tg: TaskGroup | None = None
        self._workers: dict[Key, anyio.CancelScope] = {}

    @abstractmethod
    def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
        """Make the :class:`ModelDevice` for component ``key``; raise if it cannot exist."""

    # -- runtime ---------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve every component until cancelled; components registered later join.

        On the way out every component is reset (shielded, bounded), as tomato
        does when its driver process quits.
        """
        async with anyio.create_task_group() as tg:
            # Set before the snapshot, with no await between: a component
            # registered meanwhile is started either here or by cmp_register.
            self._tg, devices = tg, list(self.devmap.values())
            for dev in devices:
                await tg.start(self._serve, dev)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._tg = None
                with anyio.CancelScope(shield=True), anyio.move_on_after(self._grace()):
                    await self.reset()

    def report_task(self, info: TaskInfo) -> None:
        if self.on_task_change is None:
            return
        try:
            self.on_task_change(info)
        except Exception:
            logger.exception("task listener failed on %s", info.id)

    async def _serve(
        self, dev: ModelDevice, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.CancelScope() as scope:
            self._workers[dev.key] = scope
            task_status.started()
            try:
                while True:
                    try:
                        await dev.serve()
                    except Exception:
                        # serve() already fails the task; this guards the loop itself.
                        logger.exception("worker of component %s crashed; restarting", dev.key)
                        await anyio.sleep(0.1)
            finally:
                if self._workers.get(dev.key) is scope:
                    del self._workers[dev.key]

    def _grace(self) -> float:
        return 2 * max((d.grace_period for d in self.devmap.values()), default=1.0)

    def _device(self, address: str, channel: str) -> ModelDevice:
        dev = self.devmap.get((address, channel))
        if dev is None:
            known = ", ".join(f"{a}/{c}" for a, c in self.devmap) or "none"
            raise DriverError(
                f"component ({address!r}, {channel!r}) is not registered on this driver; "
                f"registered: {known}"
            )
        return dev

    # -- components --------------------------------------------------------------

    @replies
    async def cmp_register(self, address: str, channel: str, **kwargs: Any) -> Reply:
        """Create the component; ``Reply.data`` is its set of capabilities."""
        key = (address, channel)
        if key in self.devmap:
            raise DriverError(f"component {key} is already registered; tear it down first")
        dev = self.DeviceFactory(key, **kwargs)
        self.devmap[key] = dev
        if self._tg is not None:
            await self._tg.start(self._serve, dev)
        return Reply(success=True, msg=f"component {key} registered", data=dev.capabilities())

    @replies
    async def cmp_teardown(self, address: str, channel: str) -> Reply:
        """Stop the component's task, reset it and forget it."""
        dev = self._device(address, channel)
        del self.devmap[dev.key]
        try:
            await dev.reset()
        finally:
            worker = self._workers.pop(dev.key, None)
            if worker is not None:
                worker.cancel()
        return Reply(success=True, msg=f"component {dev.key} torn down")

    @replies
    async def cmp_reset(self, address: str, channel: str) -> Reply:
        """Put the component in a safe, idle state (end of every job)."""
        dev = self._device(address, channel)
        await dev.reset()
        return Reply(success=True, msg=f"component {dev.key} reset")

    @replies
    async def cmp_get_attr(self, address: str, channel: str, attr: str) -> Reply:
        dev = self._device(address, channel)
        if attr not in dev.attrs():
            known = ", ".join(sorted(dev.attrs()))
            raise DriverError(f"{attr!r} is not an attr of component {dev.key}; attrs: {known}")
        val = await dev.get_attr(attr)
        return Reply(success=True, msg=f"attr {attr!r} of component {dev.key} is {val!r}", data=val)

    @replies
    async def cmp_set_attr(self, address: str, channel: str, attr: str, val: Any) -> Reply:
        """Validate and coerce ``val`` (types, units, limits, options), then set it."""
        dev = self._device(address, channel)
        try:
            coerced = coerce_param(dev.attrs(), attr, val)
        except DriverError as exc:
            raise DriverError(f"cannot set attr on component {dev.key}: {exc}") from exc
        await dev.set_attr(attr, coerced)
        msg = f"attr {attr!r} of component {dev.key} set to {coerced!r}"
        return Reply(success=True, msg=msg, data=coerced)

    @replies
    async def cmp_attrs(self, address: str, channel: str) -> Reply:
        dev = self._device(address, channel)
        return Reply(success=True, msg=f"attrs of component {dev.key}", data=dev.attrs())

    @replies
    async def cmp_capabilities(self, address: str, channel: str) -> Reply:
        dev = self._device(address, channel)
        caps = dev.capabilities()
        return Reply(success=True, msg=f"component {dev.key} can run {sorted(caps)}", data=caps)

    @replies
    async def cmp_constants(self, address: str, channel: str) -> Reply:
        dev = self._device(address, channel)
        data = self.constants | dev.constants
        return Reply(success=True, msg=f"constants of component {dev.key}", data=data)

    @replies
    async def cmp_status(self, address: str, channel: str) -> Reply:
        """Status attrs plus ``running``, ``task`` (current id) and ``queued`` (ids)."""
        dev = self._device(address, channel)
        data = await dev.status()
        running = dev.current is not None
        data |= {
            "running": running,
            "task": dev.current.id if dev.current else None,
            "queued": [r.id for r in dev.task_list],
        }
        msg = f"component {dev.key} is {'running' if running else 'idle'}"
        return Reply(success=True, msg=msg, data=data)

    @replies
    async def cmp_last_data(self, address: str, channel: str) -> Reply:
        dev = self._device(address, channel)
        sample = dev.get_last_data()
        if sample is None:
            return Reply(success=False, msg=f"no data yet on component {dev.key}")
        return Reply(success=True, msg=f"last sample of component {dev.key}", data=sample)

    @replies
    async def cmp_measure(self, address: str, channel: str) -> Reply:
        """One reading now (component idle); ``Reply.data`` is the Sample."""
        dev = self._device(address, channel)
        sample = await dev.measure()
        return Reply(success=True, msg=f"measured component {dev.key}", data=sample)

    # -- tasks ---------------------------------------------------------------------

    @replies
    async def task_validate(
        self, address: str, channel: str, task: Task | Mapping[str, Any]
    ) -> Reply:
        """Check a task without submitting it; ``Reply.data`` is the coerced params."""
        dev = self._device(address, channel)
        task = _as_task(task)
        params = validate_task(task, dev.attrs(), dev.capabilities(), f"{dev.key}")
        return Reply(success=True, msg=f"task {task.label} is valid", data=params)

    @replies
    async def task_submit(
        self, address: str, channel: str, task: Task | Mapping[str, Any]
    ) -> Reply:
        """Validate and queue a task; ``Reply.data`` is its :class:`TaskInfo` (with ``id``)."""
        dev = self._device(address, channel)
        task = _as_task(task)
        params = validate_task(task, dev.attrs(), dev.capabilities(), f"{dev.key}")
        run = TaskRun(task.model_copy(update={"task_params": params}), dev.key)
        dev.submit(run)
        where = "queued" if dev.current is not None or len(dev.task_list) > 1 else "submitted"
        return Reply(success=True, msg=f"task {task.label} {where}", data=run.info())

    @replies
    async def task_status(self, address: str, channel: str, task_id: str | None = None) -> Reply:
        """:class:`TaskInfo` of ``task_id``, else of the current or latest task."""
        dev = self._device(address, channel)
        run = _find_run(dev, task_id)
        if run is None:
            return Reply(success=True, msg=f"no task on component {dev.key}", data=None)
        return Reply(success=True, msg=f"task {run.task.label} is {run.state}", data=run.info())

    @replies
    async def task_stop(self, address: str, channel: str, task_id: str | None = None) -> Reply:
        """Stop the current task (or ``task_id``, queued or running); waits until it ended.

        Stopping a task that already ended is not an error. Data stays in the
        cache for :meth:`task_data`.
        """
        dev = self._device(address, channel)
        run = dev.current if task_id is None else _find_run(dev, task_id)
        if run is None:
            return Reply(success=True, msg=f"no task running on component {dev.key}")
        await dev.stop(run)
        if not run.state.is_final:
            raise DriverError(
                f"task {run.task.label} on component {dev.key} did not stop in time; "
                "the device may be hung"
            )
        return Reply(success=True, msg=run.msg, data=run.info())

    @replies
    async def task_data(self, address: str, channel: str) -> Reply:
        """Drain the component's cache: ``Reply.data`` is a list of Samples (maybe empty)."""
        dev = self._device(address, channel)
        samples = dev.get_data()
        return Reply(success=True, msg=f"{len(samples)} new samples", data=samples)

    # -- the driver itself ---------------------------------------------------------

    @replies
    async def status(self) -> Reply:
        keys = list(self.devmap)
        running = [k for k, d in self.devmap.items() if d.current is not None]
        data = {"version": self.version, "components": keys, "running": running}
        msg = f"driver with {len(keys)} components, {len(running)} running"
        return Reply(success=True, msg=msg, data=data)

    @replies
    async def reset(self) -> Reply:
        """Reset every component; failures are reported, the others still reset."""
        failed: list[str] = []
        for key, dev in list(self.devmap.items()):
            try:
                await dev.reset()
            except Exception as exc:
                logger.exception("reset of component %s failed", key)
                failed.append(f"{key}: {describe(exc)}")
        if failed:
            return Reply(success=False, msg="reset failed for " + "; ".join(failed))
        return Reply(success=True, msg=f"{len(self.devmap)} components reset")


def _as_task(task: Task | Mapping[str, Any]) -> Task:
    if isinstance(task, Task):
        return task
    try:
        return Task.model_validate(task)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'task'}: {e['msg']}" for e in exc.errors()
        )
        raise DriverError(f"task is malformed: {fields}") from exc


def _find_run(dev: ModelDevice, task_id: str | None) -> TaskRun | None:
    if task_id is None:
        return dev.current or next(reversed(dev.runs.values()), None)
    run = dev.runs.get(task_id)
    if run is None:
        raise DriverError(f"task id {task_id!r} is unknown on component {dev.key}")
    return run
