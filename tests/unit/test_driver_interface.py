"""ModelInterface: every call returns a Reply; a bad call fails with a clear msg."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from gantry.drivers.interface_2_0 import Key, ModelDevice, Reply, Sample, Task, TaskInfo, TaskState
from gantry.drivers.testing import FaultyDevice, FaultyDriver, running, wait_for_task

A = "lab"
TASK = Task(component_role="c", technique_name="count", max_duration=0.1, sampling_interval=0.02)

CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("cmp_teardown", ()),
    ("cmp_reset", ()),
    ("cmp_get_attr", ("val",)),
    ("cmp_set_attr", ("delay", 1)),
    ("cmp_attrs", ()),
    ("cmp_capabilities", ()),
    ("cmp_constants", ()),
    ("cmp_status", ()),
    ("cmp_last_data", ()),
    ("cmp_measure", ()),
    ("task_validate", (TASK,)),
    ("task_submit", (TASK,)),
    ("task_status", ()),
    ("task_stop", ()),
    ("task_data", ()),
]


@pytest.mark.parametrize(("method", "args"), CALLS, ids=[c[0] for c in CALLS])
async def test_unknown_component_is_a_failed_reply(method: str, args: tuple[Any, ...]) -> None:
    driver = FaultyDriver()
    await driver.cmp_register(A, "1")
    reply = await getattr(driver, method)(A, "nope", *args)
    assert isinstance(reply, Reply) and not reply.success
    assert "('lab', 'nope') is not registered" in reply.msg and "lab/1" in reply.msg


async def test_register_returns_capabilities_and_refuses_duplicates() -> None:
    driver = FaultyDriver()
    reply = await driver.cmp_register(A, "1")
    assert reply.success and reply.data == {"count", "random"}
    again = await driver.cmp_register(A, "1")
    assert not again.success and "already registered" in again.msg


async def test_device_factory_error_is_a_failed_reply() -> None:
    class Picky(FaultyDriver):
        def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
            if key[1] != "1":
                raise ValueError(f"no channel {key[1]}")
            return super().DeviceFactory(key, **kwargs)

    driver = Picky()
    reply = await driver.cmp_register(A, "2")
    assert not reply.success and reply.msg == "cmp_register failed: ValueError: no channel 2"
    assert driver.devmap == {}


async def test_exceptions_inside_the_device_are_failed_replies() -> None:
    driver = FaultyDriver()
    await driver.cmp_register(A, "1")
    assert (await driver.cmp_set_attr(A, "1", "fault", "broken")).success
    get = await driver.cmp_get_attr(A, "1", "val")
    assert not get.success
    assert get.msg == "cmp_get_attr failed: RuntimeError: injected fault: cannot read 'val'"
    assert "cannot write 'delay'" in (await driver.cmp_set_attr(A, "1", "delay", 1)).msg
    assert "sensor unplugged" in (await driver.cmp_measure(A, "1")).msg
    assert not (await driver.cmp_status(A, "1")).success
    assert (await driver.cmp_reset(A, "1")).success  # reset brings it back
    assert (await driver.cmp_get_attr(A, "1", "val")).success


async def test_attr_calls_check_name_rw_units_limits_options() -> None:
    driver = FaultyDriver()
    await driver.cmp_register(A, "1")
    unknown = await driver.cmp_get_attr(A, "1", "colour")
    assert "'colour' is not an attr" in unknown.msg and "delay" in unknown.msg
    read_only = await driver.cmp_set_attr(A, "1", "val", 3)
    assert not read_only.success and "'val' is read-only" in read_only.msg
    ms = await driver.cmp_set_attr(A, "1", "delay", "20 ms")
    assert ms.success and ms.data == pytest.approx(0.02)
    assert (await driver.cmp_get_attr(A, "1", "delay")).data == pytest.approx(0.02)
    kg = await driver.cmp_set_attr(A, "1", "delay", "5 kg")
    assert not kg.success and "'delay'" in kg.msg and "[mass]" in kg.msg
    big = await driver.cmp_set_attr(A, "1", "delay", "1 min")
    assert not big.success and "at most 10.0 s" in big.msg
    mode = await driver.cmp_set_attr(A, "1", "mode", "sideways")
    assert not mode.success and "'down', 'up'" in mode.msg


async def test_measure_gives_a_sample_and_last_data() -> None:
    driver = FaultyDriver()
    await driver.cmp_register(A, "1")
    assert not (await driver.cmp_last_data(A, "1")).success  # nothing yet
    sample = (await driver.cmp_measure(A, "1")).data
    assert isinstance(sample, Sample) and sample.units == {"delay": "s", "work": "s"}
    assert 0 <= sample.values["val"] <= 10
    assert (await driver.cmp_last_data(A, "1")).data == sample
    assert (await driver.task_data(A, "1")).data == []  # a measurement is not task data


async def test_measure_refused_while_a_task_runs() -> None:
    driver = FaultyDriver()
    await driver.cmp_register(A, "1")
    async with running(driver):
        await driver.task_submit(A, "1", TASK.model_copy(update={"max_duration": 5}))
        await anyio.sleep(0.05)
        busy = await driver.cmp_measure(A, "1")
        assert not busy.success and "running a task" in busy.msg
        last = await driver.cmp_last_data(A, "1")
        assert last.success and last.data.task_id is not None  # live status from the task


async def test_task_given_as_a_dict_is_parsed_and_checked() -> None:
    driver = FaultyDriver()
    await driver.cmp_register(A, "1")
    good = {
        "component_role": "c",
        "technique_name": "count",
        "max_duration": 1,
        "sampling_interval": 0.5,
    }
    assert (await driver.task_validate(A, "1", good)).success
    typo = await driver.task_validate(A, "1", good | {"sampling_intervall": 1})
    assert not typo.success and "sampling_intervall" in typo.msg
    missing = await driver.task_submit(A, "1", {"technique_name": "count"})
    assert not missing.success and "max_duration: Field required" in missing.msg


async def test_task_status_and_stop_without_tasks() -> None:
    driver = FaultyDriver()
    await driver.cmp_register(A, "1")
    none = await driver.task_status(A, "1")
    assert none.success and none.data is None
    unknown = await driver.task_status(A, "1", "abc")
    assert not unknown.success and "'abc' is unknown" in unknown.msg
    assert (await driver.task_stop(A, "1")).success  # stopping nothing is fine


async def test_old_finished_tasks_are_forgotten() -> None:
    class Short(FaultyDevice):
        history = 3

    class Driver(FaultyDriver):
        def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
            return Short(self, key)

    driver = Driver()
    await driver.cmp_register(A, "1")
    async with running(driver):
        infos: list[TaskInfo] = []
        for _ in range(5):
            infos.append((await driver.task_submit(A, "1", TASK)).data)
            await wait_for_task(driver, A, "1", infos[-1].id, 2)
    assert not (await driver.task_status(A, "1", infos[0].id)).success
    last = (await driver.task_status(A, "1", infos[-1].id)).data
    assert last.state is TaskState.COMPLETED


async def test_driver_status_and_reset() -> None:
    driver = FaultyDriver(settings={"port": "/dev/null"})
    await driver.cmp_register(A, "1")
    await driver.cmp_register(A, "2")
    status = await driver.status()
    assert status.success and status.data["components"] == [(A, "1"), (A, "2")]
    assert status.data["version"] == "2.0" and driver.settings == {"port": "/dev/null"}
    assert (await driver.reset()).success
    driver.constants["site"] = "lab 3"
    consts = (await driver.cmp_constants(A, "1")).data
    assert consts == {"site": "lab 3", "model": "example counter", "serial": "lab/1"}


async def test_reply_data_serialises_to_json() -> None:
    driver = FaultyDriver()
    await driver.cmp_register(A, "1")
    attrs = (await driver.cmp_attrs(A, "1")).data
    dumped = {name: attr.model_dump(mode="json") for name, attr in attrs.items()}
    assert dumped["delay"] == {
        "type": "float",
        "rw": True,
        "status": True,
        "units": "s",
        "minimum": 0.0,
        "maximum": 10.0,
        "options": None,
    }
    sample = (await driver.cmp_measure(A, "1")).data
    info = (await driver.task_submit(A, "1", TASK)).data
    text = json.dumps(
        {"attrs": dumped, "sample": sample.as_dict(), "task": info.model_dump(mode="json")}
    )
    assert '"state": "queued"' in text and '"units": {"delay": "s"' in text


async def test_hung_measurement_is_a_failed_reply() -> None:
    class Impatient(FaultyDevice):
        measure_timeout = 0.1

    class Driver(FaultyDriver):
        def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
            return Impatient(self, key)

    driver = Driver()
    await driver.cmp_register(A, "1")
    await driver.cmp_set_attr(A, "1", "fault", "hang")
    with anyio.fail_after(2):
        reply = await driver.cmp_measure(A, "1")
    assert not reply.success and "took longer than 0.1 s" in reply.msg
