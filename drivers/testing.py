"""Testing aids: a contract check any driver can run against itself, and a
driver with injectable faults for testing what sits on top of drivers.

::

    async def test_contract():
        await check_driver_contract(
            DriverInterface, address="a", channel="1", technique="count",
            params={"delay": "0 s"},
        )

It registers one component, runs the driver in its own task group and walks
the whole contract: attrs, capabilities, constants, get/set attr (and
failures for unknown and read-only attrs), measure, validation of good and
bad tasks, a short task and its data, stop, reset, teardown. Every call must
return a Reply; a violation raises :class:`ContractViolation` naming the step.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio

from gantry.drivers.example_counter import CounterDevice
from gantry.drivers.interface_2_0 import (
    Attr,
    Key,
    ModelDevice,
    ModelInterface,
    Reply,
    Sample,
    Task,
    TaskInfo,
    TaskState,
    Value,
)
from gantry.drivers.quantity import parse_units

_UNKNOWN = "__no_such_attr__"
D = TypeVar("D", bound=ModelInterface)


@asynccontextmanager
async def running(driver: D) -> AsyncIterator[D]:
    """Run ``driver`` in a task group for the block, as the server does.

    An error in the block comes out as itself, not wrapped in an ExceptionGroup.
    """
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(driver.run)
            try:
                yield driver
            finally:
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


class ContractViolation(AssertionError):
    """The driver broke the contract at ``step``."""

    def __init__(self, step: str, detail: str) -> None:
        super().__init__(f"[{step}] {detail}")
        self.step = step


async def wait_for_task(
    driver: ModelInterface, address: str, channel: str, task_id: str, limit: float = 10.0
) -> TaskInfo:
    """Wait (at most ``limit`` seconds) until a task has ended; its final TaskInfo."""
    run = driver.devmap[(address, channel)].runs[task_id]
    with anyio.fail_after(limit):
        await run.done.wait()
    return run.info()


def _reply(step: str, reply: object) -> Reply:
    if not isinstance(reply, Reply):
        raise ContractViolation(step, f"returned {type(reply).__name__}, not a Reply")
    return reply


def _ok(step: str, reply: object) -> Reply:
    r = _reply(step, reply)
    if not r.success:
        raise ContractViolation(step, f"expected success, got failure: {r.msg}")
    return r


def _fails(step: str, reply: object, *mentions: str) -> Reply:
    r = _reply(step, reply)
    if r.success:
        raise ContractViolation(step, f"expected a failed Reply, got success: {r.msg}")
    for word in mentions:
        if word not in r.msg:
            raise ContractViolation(step, f"failure message should name {word!r}: {r.msg}")
    return r


def _check(step: str, condition: bool, detail: str) -> None:
    if not condition:
        raise ContractViolation(step, detail)


class _Contract:
    def __init__(
        self,
        driver: ModelInterface,
        address: str,
        channel: str,
        task: Task,
        timeout: float,
    ) -> None:
        self.d, self.a, self.c = driver, address, channel
        self.task, self.timeout = task, timeout
        self.passed: list[str] = []

    def done(self, step: str) -> None:
        self.passed.append(step)

    async def wait_final(self, step: str, task_id: str) -> TaskInfo:
        try:
            await wait_for_task(self.d, self.a, self.c, task_id, self.timeout)
        except TimeoutError:
            raise ContractViolation(step, f"task not final after {self.timeout} s") from None
        info: TaskInfo = _ok(step, await self.d.task_status(self.a, self.c, task_id)).data
        _check(step, isinstance(info, TaskInfo) and info.id == task_id, f"bad status {info!r}")
        return info

    async def before_register(self) -> None:
        _fails("unregistered", await self.d.cmp_attrs(self.a, self.c), self.a, self.c)
        caps = _ok("register", await self.d.cmp_register(self.a, self.c)).data
        _check("register", isinstance(caps, set | frozenset), f"data must be a set: {caps!r}")
        _check("register", self.task.technique_name in caps, f"{caps} lacks the technique")
        _fails("register twice", await self.d.cmp_register(self.a, self.c))
        self.done("register")

    async def describe(self) -> dict[str, Attr]:
        attrs: dict[str, Attr] = _ok("attrs", await self.d.cmp_attrs(self.a, self.c)).data
        _check("attrs", isinstance(attrs, dict) and bool(attrs), f"need a dict of Attrs: {attrs}")
        for name, attr in attrs.items():
            _check("attrs", isinstance(attr, Attr), f"{name!r} is not an Attr")
            if attr.units is not None:
                try:
                    parse_units(attr.units)
                except ValueError as exc:
                    raise ContractViolation("attrs", f"{name!r}: {exc}") from exc
        caps = _ok("capabilities", await self.d.cmp_capabilities(self.a, self.c)).data
        _check("capabilities", self.task.technique_name in caps, f"{caps} lacks the technique")
        consts = _ok("constants", await self.d.cmp_constants(self.a, self.c)).data
        _check("constants", isinstance(consts, dict), f"need a dict: {consts!r}")
        self.done("attrs, capabilities, constants")
        return attrs

    async def attributes(self, attrs: dict[str, Attr]) -> None:
        for name, attr in attrs.items():
            value = _ok(f"get_attr {name!r}", await self.d.cmp_get_attr(self.a, self.c, name)).data
            step = f"set_attr {name!r}"
            reply = await self.d.cmp_set_attr(self.a, self.c, name, value)
            if attr.rw:
                _ok(step + " to its current value", reply)
            else:
                _fails(step + " (read-only)", reply, name)
        _fails("get_attr unknown", await self.d.cmp_get_attr(self.a, self.c, _UNKNOWN), _UNKNOWN)
        _fails("set_attr unknown", await self.d.cmp_set_attr(self.a, self.c, _UNKNOWN, 1), _UNKNOWN)
        self.done("get/set attr")

    async def status_and_measure(self) -> None:
        status = _ok("status", await self.d.cmp_status(self.a, self.c)).data
        _check("status", status.get("running") is False, f"idle component: {status}")
        sample = _ok("measure", await self.d.cmp_measure(self.a, self.c)).data
        _check_sample("measure", sample)
        last = _ok("last_data", await self.d.cmp_last_data(self.a, self.c)).data
        _check("last_data", last == sample, f"last data {last} is not the measured {sample}")
        _ok("driver status", await self.d.status())
        self.done("status, measure")

    async def validation(self, attrs: dict[str, Attr]) -> None:
        t = self.task
        _ok("validate good task", await self.d.task_validate(self.a, self.c, t))
        bad: list[tuple[str, Task, str]] = [
            ("unknown technique", t.model_copy(update={"technique_name": "no-such"}), "no-such"),
            ("sampling_interval 0", t.model_copy(update={"sampling_interval": 0}), "sampling"),
            (
                "interval > duration",
                t.model_copy(update={"sampling_interval": 2 * t.max_duration}),
                "sampling_interval",
            ),
            ("unknown param", t.model_copy(update={"task_params": {_UNKNOWN: 1}}), _UNKNOWN),
        ]
        read_only = next((n for n, a in attrs.items() if not a.rw), None)
        if read_only is not None:
            bad.append(
                ("read-only param", t.model_copy(update={"task_params": {read_only: 1}}), read_only)
            )
        name = repr(t.task_name)
        for what, task, mention in bad:
            reply = await self.d.task_validate(self.a, self.c, task)
            _fails(f"validate {what}", reply, name, mention)
            _fails(f"submit {what}", await self.d.task_submit(self.a, self.c, task), name, mention)
        self.done("validation")

    async def run_task(self) -> None:
        info = _ok("submit", await self.d.task_submit(self.a, self.c, self.task)).data
        _check("submit", isinstance(info, TaskInfo), f"data must be a TaskInfo: {info!r}")
        final = await self.wait_final("task", info.id)
        _check("task", final.state is TaskState.COMPLETED, f"ended {final.state}: {final.msg}")
        samples = _ok("task_data", await self.d.task_data(self.a, self.c)).data
        _check("task_data", isinstance(samples, list) and bool(samples), f"no samples: {samples}")
        ours = [s for s in samples if s.task_id == info.id]
        _check("task_data", len(ours) == final.samples, f"{len(ours)} of {final.samples} samples")
        for sample in samples:
            _check_sample("task_data", sample)
        times = [s.uts for s in ours]
        _check("task_data", times == sorted(times), "timestamps go backwards")
        again = _ok("task_data drains", await self.d.task_data(self.a, self.c)).data
        _check("task_data drains", again == [], f"second drain returned {len(again)} samples")
        self.done("task and data")

    async def stop_task(self, grace: float) -> None:
        long = self.task.model_copy(update={"max_duration": 1000 * self.task.sampling_interval})
        info = _ok("submit long task", await self.d.task_submit(self.a, self.c, long)).data
        # Let it start and take a few samples, then stop it mid-run.
        await anyio.sleep(3 * self.task.sampling_interval)
        started = anyio.current_time()
        stopped = _ok("stop", await self.d.task_stop(self.a, self.c, info.id)).data
        took = anyio.current_time() - started
        _check("stop", stopped.state is TaskState.STOPPED, f"ended {stopped.state}: {stopped.msg}")
        limit = self.task.sampling_interval + grace
        _check("stop", took <= limit, f"stop took {took:.3f} s, more than {limit:.3f} s")
        _ok("stop again (idempotent)", await self.d.task_stop(self.a, self.c, info.id))
        self.done("stop")

    async def reset_and_teardown(self) -> None:
        _ok("reset", await self.d.cmp_reset(self.a, self.c))
        status = _ok("status after reset", await self.d.cmp_status(self.a, self.c)).data
        _check("reset", status.get("running") is False, f"still running after reset: {status}")
        _ok("driver reset", await self.d.reset())
        _ok("teardown", await self.d.cmp_teardown(self.a, self.c))
        _fails("after teardown", await self.d.cmp_status(self.a, self.c), self.a)
        self.done("reset, teardown")


def _check_sample(step: str, sample: object) -> None:
    if not isinstance(sample, Sample):
        raise ContractViolation(step, f"not a Sample: {sample!r}")
    _check(step, isinstance(sample.uts, float), f"uts must be a float: {sample.uts!r}")
    _check(step, isinstance(sample.values, dict) and bool(sample.values), "values must be a dict")
    units_ok = all(isinstance(u, str) for u in sample.units.values())
    _check(step, units_ok, f"units must be strings: {sample.units}")


async def check_driver_contract(
    driver: ModelInterface | type[ModelInterface],
    *,
    address: str,
    channel: str,
    technique: str,
    params: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
    sampling_interval: float = 0.05,
    max_duration: float = 0.3,
    task_wait: float = 10.0,
) -> list[str]:
    """Walk the driver contract on one fresh component; return the steps passed.

    ``driver`` is a ``DriverInterface`` class (made with ``settings``) or an
    instance with nothing registered at ``(address, channel)``. ``params``
    are good ``task_params`` for ``technique``. ``task_wait`` bounds each wait
    for a task to end (the whole check is bounded by four times that).
    """
    d = driver(settings) if isinstance(driver, type) else driver
    task = Task(
        component_role="contract",
        technique_name=technique,
        task_params=dict(params or {}),
        max_duration=max_duration,
        sampling_interval=sampling_interval,
        task_name="contract check",
    )
    c = _Contract(d, address, channel, task, task_wait)
    with anyio.fail_after(task_wait * 4):
        await c.before_register()
        async with running(d):
            attrs = await c.describe()
            await c.attributes(attrs)
            await c.status_and_measure()
            await c.validation(attrs)
            await c.run_task()
            grace = d.devmap[(address, channel)].grace_period
            await c.stop_task(grace)
            await c.reset_and_teardown()
    return c.passed


FAULTS = frozenset({"none", "raise", "hang", "broken"})


class FaultyDevice(CounterDevice):
    """The example counter plus two attrs to misbehave on purpose.

    ``fault``: ``"raise"`` makes each step and measurement raise, ``"hang"``
    makes them wait forever, ``"broken"`` also makes get/set of other attrs
    raise. ``work`` (s) is time each step spends awaiting, as a slow
    instrument would (``delay`` blocks a thread instead). Short grace period
    so tests of hung devices stay fast.
    """

    grace_period = 0.2

    def _defaults(self) -> None:
        super()._defaults()
        self.fault = "none"
        self.work = 0.0

    def attrs(self) -> dict[str, Attr]:
        return super().attrs() | {
            "fault": Attr(type=str, rw=True, options=FAULTS),
            "work": Attr(type=float, rw=True, units="s", minimum=0, maximum=60),
        }

    async def get_attr(self, attr: str) -> Any:
        if self.fault == "broken" and attr != "fault":
            raise RuntimeError(f"injected fault: cannot read {attr!r}")
        return await super().get_attr(attr)

    async def set_attr(self, attr: str, val: Any) -> None:
        if self.fault == "broken" and attr != "fault":
            raise RuntimeError(f"injected fault: cannot write {attr!r}")
        await super().set_attr(attr, val)

    async def do_task(self, task: Task, *, t_start: float, t_now: float) -> None:
        await self._misbehave()
        if self.work:
            await anyio.sleep(self.work)
        await super().do_task(task, t_start=t_start, t_now=t_now)

    async def do_measure(self) -> dict[str, Value]:
        await self._misbehave()
        return await super().do_measure()

    async def _misbehave(self) -> None:
        if self.fault in ("raise", "broken"):
            raise RuntimeError("injected fault: sensor unplugged")
        if self.fault == "hang":
            await anyio.sleep_forever()


class FaultyDriver(ModelInterface):
    def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
        return FaultyDevice(self, key, **kwargs)
