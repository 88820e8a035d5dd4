"""A tomato ``DriverInterface`` (2.0 or 2.1) served as a gantry driver.

:func:`tomato_driver_class` makes, for one tomato driver class, a subclass
of :class:`TomatoDriver`: a gantry ``ModelInterface`` whose every call goes
to the tomato driver in a worker thread (one at a time per component, as
tomato's own driver process serves them), with tomato's Reply, Attr, Task and
``xarray`` data mapped to gantry's. tomato's own task threads and data lock
stay as they are; the package is used unmodified.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskGroup, TaskStatus
from pydantic import ValidationError

from gantry.drivers.errors import DriverError
from gantry.drivers.interface_2_0 import ModelDevice, ModelInterface, Reply, Task, TaskListener
from gantry.drivers.interface_2_0.device import describe
from gantry.drivers.interface_2_0.interface import replies
from gantry.drivers.interface_2_0.run import TaskRun
from gantry.drivers.tomato_host.calls import blocking, call
from gantry.drivers.tomato_host.component import Slot, tomato_task_of
from gantry.drivers.tomato_host.convert import gantry_attr, magnitude
from gantry.drivers.types import Attr, Key

logger = logging.getLogger(__name__)

#: Seconds a one-shot ``cmp_measure`` may take, and how often its end is looked for.
MEASURE_TIMEOUT, MEASURE_POLL = 10.0, 0.01


class TomatoDriver(ModelInterface):
    """gantry's driver contract over one tomato ``DriverInterface`` instance."""

    tomato_class: ClassVar[type[Any]]
    #: tomato's interface version of the wrapped driver ("2.0" or "2.1")
    tomato_version: ClassVar[str]
    tomato_module: ClassVar[str]

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        *,
        on_task_change: TaskListener | None = None,
    ) -> None:
        super().__init__(settings, on_task_change=on_task_change)
        self.tomato: Any = self.tomato_class(dict(self.settings))
        self.slots: dict[Key, Slot] = {}
        self._limiter = anyio.CapacityLimiter(1)  # driver-wide calls: register, teardown
        self._group: TaskGroup | None = None
        self._scopes: dict[Key, anyio.CancelScope] = {}

    def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
        raise DriverError(f"components of {self.tomato_module} are made by the tomato driver")

    # -- runtime -----------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve every component until cancelled; on the way out reset them all."""
        async with anyio.create_task_group() as tg:
            self._group, slots = tg, list(self.slots.values())
            for slot in slots:
                await tg.start(self._serve_slot, slot)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                self._group = None
                with anyio.CancelScope(shield=True), anyio.move_on_after(15):
                    await self.reset()

    async def _serve_slot(
        self, slot: Slot, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.CancelScope() as scope:
            self._scopes[slot.key] = scope
            task_status.started()
            while True:
                try:
                    await slot.serve()
                except Exception:
                    logger.exception("worker of component %s crashed; restarting", slot.key)
                    await anyio.sleep(0.1)

    def _slot(self, address: str, channel: str) -> Slot:
        slot = self.slots.get((address, channel))
        if slot is None:
            known = ", ".join(f"{a}/{c}" for a, c in self.slots) or "none"
            raise DriverError(
                f"component ({address!r}, {channel!r}) is not registered on this driver; "
                f"registered: {known}"
            )
        return slot

    async def _call(self, slot: Slot, method: str, **kwargs: Any) -> Any:
        """tomato's ``method`` for ``slot``; its data, or its message as a DriverError."""
        reply = await call(slot.limiter, getattr(self.tomato, method), **slot.kwargs(), **kwargs)
        if not reply.success:
            raise DriverError(f"component {slot.key}: {reply.msg}")
        return reply.data

    async def _attrs(self, slot: Slot) -> dict[str, Attr]:
        found = await self._call(slot, "cmp_attrs")
        return {str(name): gantry_attr(attr) for name, attr in found.items()}

    # -- components ----------------------------------------------------------------

    @replies
    async def cmp_register(self, address: str, channel: str, **kwargs: Any) -> Reply:
        key = (address, channel)
        if key in self.slots:
            raise DriverError(f"component {key} is already registered; tear it down first")
        got = await call(
            self._limiter, self.tomato.cmp_register, address=address, channel=channel, **kwargs
        )
        if not got.success:
            raise DriverError(got.msg)
        slot = Slot(key, self.tomato, self.report_task)
        slot.hook()
        self.slots[key] = slot
        if self._group is not None:
            await self._group.start(self._serve_slot, slot)
        return Reply(success=True, msg=f"component {key} registered", data=set(got.data or ()))

    @replies
    async def cmp_teardown(self, address: str, channel: str) -> Reply:
        slot = self._slot(address, channel)
        await slot.stop_all()
        del self.slots[slot.key]
        scope = self._scopes.pop(slot.key, None)
        if scope is not None:
            scope.cancel()
        await blocking(self._limiter, self.tomato.cmp_teardown, **slot.kwargs())
        return Reply(success=True, msg=f"component {slot.key} torn down")

    @replies
    async def cmp_reset(self, address: str, channel: str) -> Reply:
        """Stop and drop this component's tasks (their data kept), then tomato's reset."""
        slot = self._slot(address, channel)
        await slot.stop_all()
        await self._call(slot, "cmp_reset")
        return Reply(success=True, msg=f"component {slot.key} reset")

    @replies
    async def cmp_get_attr(self, address: str, channel: str, attr: str) -> Reply:
        slot = self._slot(address, channel)
        attrs = await self._attrs(slot)
        if attr not in attrs:
            known = ", ".join(sorted(attrs))
            raise DriverError(f"{attr!r} is not an attr of component {slot.key}; attrs: {known}")
        val = magnitude(await self._call(slot, "cmp_get_attr", attr=attr), attrs[attr].units)
        return Reply(
            success=True, msg=f"attr {attr!r} of component {slot.key} is {val!r}", data=val
        )

    @replies
    async def cmp_set_attr(self, address: str, channel: str, attr: str, val: Any) -> Reply:
        """tomato's own checks and coercion (``coerce_val``) decide; gantry adds the names."""
        slot = self._slot(address, channel)
        attrs = await self._attrs(slot)
        if attr not in attrs or not attrs[attr].rw:
            writable = ", ".join(sorted(n for n, a in attrs.items() if a.rw)) or "none"
            raise DriverError(
                f"cannot set attr {attr!r} on component {slot.key}: it is not a writable attr; "
                f"writable: {writable}"
            )
        try:
            got = await self._call(slot, "cmp_set_attr", attr=attr, val=val)
        except (ValueError, AttributeError, DriverError) as exc:
            raise DriverError(f"cannot set attr {attr!r} on component {slot.key}: {exc}") from exc
        coerced = magnitude(got, attrs[attr].units)
        msg = f"attr {attr!r} of component {slot.key} set to {coerced!r}"
        return Reply(success=True, msg=msg, data=coerced)

    @replies
    async def cmp_attrs(self, address: str, channel: str) -> Reply:
        slot = self._slot(address, channel)
        return Reply(
            success=True, msg=f"attrs of component {slot.key}", data=await self._attrs(slot)
        )

    @replies
    async def cmp_capabilities(self, address: str, channel: str) -> Reply:
        slot = self._slot(address, channel)
        caps = {str(c) for c in await self._call(slot, "cmp_capabilities")}
        return Reply(success=True, msg=f"component {slot.key} can run {sorted(caps)}", data=caps)

    @replies
    async def cmp_constants(self, address: str, channel: str) -> Reply:
        slot = self._slot(address, channel)
        found = await self._call(slot, "cmp_constants")
        data = {str(k): magnitude(v) for k, v in (found or {}).items()}
        return Reply(success=True, msg=f"constants of component {slot.key}", data=data)

    @replies
    async def cmp_status(self, address: str, channel: str) -> Reply:
        slot = self._slot(address, channel)
        attrs = await self._attrs(slot)
        found = await self._call(slot, "cmp_status")
        data = {
            str(k): magnitude(v, attrs[k].units if k in attrs else None)
            for k, v in found.items()
            if k != "running"
        }
        running = slot.current is not None
        data |= {
            "running": running,
            "task": slot.current.id if slot.current else None,
            "queued": [r.id for r in slot.queue],
        }
        msg = f"component {slot.key} is {'running' if running else 'idle'}"
        return Reply(success=True, msg=msg, data=data)

    @replies
    async def cmp_last_data(self, address: str, channel: str) -> Reply:
        slot = self._slot(address, channel)
        got = await call(slot.limiter, self.tomato.cmp_last_data, **slot.kwargs())
        sample = slot.maker.last(got.data) if got.success else None
        if sample is None:
            return Reply(success=False, msg=f"no data yet on component {slot.key}")
        return Reply(success=True, msg=f"last sample of component {slot.key}", data=sample)

    @replies
    async def cmp_measure(self, address: str, channel: str) -> Reply:
        """One reading now: tomato measures in its thread; this waits for its result."""
        slot = self._slot(address, channel)
        if slot.current is not None or slot.queue:
            raise DriverError(f"component {slot.key} is running a task; measure when it is idle")
        before = slot.device.last_data
        await self._call(slot, "cmp_measure")
        with anyio.move_on_after(MEASURE_TIMEOUT):
            # tomato's thread signals nothing: its result is looked for.
            while slot.device.last_data is before or slot.device.running:  # noqa: ASYNC110
                await anyio.sleep(MEASURE_POLL)
            sample = slot.maker.last(slot.device.last_data)
            if sample is None:
                raise DriverError(f"the measurement on component {slot.key} gave no data")
            return Reply(success=True, msg=f"measured component {slot.key}", data=sample)
        raise DriverError(
            f"measurement on component {slot.key} took longer than {MEASURE_TIMEOUT:g} s; "
            "the device may be hung"
        )

    # -- tasks ---------------------------------------------------------------------

    async def _validated(self, slot: Slot, task: Task | Mapping[str, Any]) -> Task:
        if not isinstance(task, Task):
            try:
                task = Task.model_validate(task)
            except ValidationError as exc:
                raise DriverError(f"task is malformed: {exc.errors()[0]['msg']}") from exc
        run = TaskRun(task, slot.key)
        got = await call(
            slot.limiter, self.tomato.task_validate, task=tomato_task_of(run), **slot.kwargs()
        )
        if not got.success:
            raise DriverError(f"task {task.label} on component {slot.key}: {got.msg}")
        return task

    @replies
    async def task_validate(
        self, address: str, channel: str, task: Task | Mapping[str, Any]
    ) -> Reply:
        slot = self._slot(address, channel)
        task = await self._validated(slot, task)
        return Reply(success=True, msg=f"task {task.label} is valid", data=dict(task.task_params))

    @replies
    async def task_submit(
        self, address: str, channel: str, task: Task | Mapping[str, Any]
    ) -> Reply:
        slot = self._slot(address, channel)
        run = TaskRun(await self._validated(slot, task), slot.key)
        slot.submit(run)
        where = "queued" if slot.current is not None or len(slot.queue) > 1 else "submitted"
        return Reply(success=True, msg=f"task {run.task.label} {where}", data=run.info())

    def _run(self, slot: Slot, task_id: str | None) -> TaskRun | None:
        if task_id is None:
            return slot.current or next(reversed(slot.runs.values()), None)
        run = slot.runs.get(task_id)
        if run is None:
            raise DriverError(f"task id {task_id!r} is unknown on component {slot.key}")
        return run

    @replies
    async def task_status(self, address: str, channel: str, task_id: str | None = None) -> Reply:
        slot = self._slot(address, channel)
        run = self._run(slot, task_id)
        if run is None:
            return Reply(success=True, msg=f"no task on component {slot.key}", data=None)
        return Reply(success=True, msg=f"task {run.task.label} is {run.state}", data=run.info())

    @replies
    async def task_stop(self, address: str, channel: str, task_id: str | None = None) -> Reply:
        """Stop the current task (or ``task_id``); its data stays for :meth:`task_data`."""
        slot = self._slot(address, channel)
        run = slot.current if task_id is None else self._run(slot, task_id)
        if run is None:
            return Reply(success=True, msg=f"no task running on component {slot.key}")
        await slot.stop(run)
        if not run.state.is_final:
            raise DriverError(
                f"task {run.task.label} on component {slot.key} did not stop in time; "
                "the device may be hung"
            )
        return Reply(success=True, msg=run.msg, data=run.info())

    @replies
    async def task_data(self, address: str, channel: str) -> Reply:
        samples = await self._slot(address, channel).drain()
        return Reply(success=True, msg=f"{len(samples)} new samples", data=samples)

    # -- the driver itself ---------------------------------------------------------

    @replies
    async def status(self) -> Reply:
        keys = list(self.slots)
        running = [k for k, s in self.slots.items() if s.current is not None]
        data = {
            "version": self.version,
            "tomato_version": self.tomato_version,
            "tomato_module": self.tomato_module,
            "components": keys,
            "running": running,
        }
        msg = f"tomato driver {self.tomato_module} with {len(keys)} components"
        return Reply(success=True, msg=msg, data=data)

    @replies
    async def reset(self) -> Reply:
        failed: list[str] = []
        for key, slot in list(self.slots.items()):
            try:
                await slot.stop_all()
                await self._call(slot, "cmp_reset")
            except Exception as exc:
                logger.exception("reset of component %s failed", key)
                failed.append(f"{key}: {describe(exc)}")
        if failed:
            return Reply(success=False, msg="reset failed for " + "; ".join(failed))
        return Reply(success=True, msg=f"{len(self.slots)} components reset")


def tomato_driver_class(name: str, cls: type[Any], version: str) -> type[TomatoDriver]:
    """The gantry driver class serving tomato driver class ``cls``."""
    attrs = {"tomato_class": cls, "tomato_version": version, "tomato_module": cls.__module__}
    made = type(f"Tomato_{cls.__module__}", (TomatoDriver,), attrs)
    made.__doc__ = f"tomato driver {name!r} ({cls.__module__}, interface {version}) in gantry."
    return made
