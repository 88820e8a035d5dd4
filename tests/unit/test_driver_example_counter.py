"""The example_counter driver: its techniques, attrs and constants."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from gantry.drivers.example_counter import DriverInterface
from gantry.drivers.interface_2_0 import Sample, Task, TaskState
from gantry.drivers.testing import running, wait_for_task


def task(technique: str, **params: Any) -> Task:
    return Task(
        component_role="counter",
        technique_name=technique,
        max_duration=0.2,
        sampling_interval=0.02,
        task_params=params,
    )


async def run_one(driver: DriverInterface, t: Task) -> list[Sample]:
    info = (await driver.task_submit("a", "1", t)).data
    final = await wait_for_task(driver, "a", "1", info.id, 3)
    assert final.state is TaskState.COMPLETED, final.msg
    samples: list[Sample] = (await driver.task_data("a", "1")).data
    return samples


@pytest.fixture
async def driver() -> DriverInterface:
    d = DriverInterface()
    assert (await d.cmp_register("a", "1")).success
    return d


async def test_count_goes_up_one_per_sample_and_down_in_mode_down(
    driver: DriverInterface,
) -> None:
    async with running(driver):
        up = await run_one(driver, task("count"))
        down = await run_one(driver, task("count", mode="down"))
    assert [s.values["val"] for s in up] == [float(i) for i in range(1, 11)]
    assert [s.values["val"] for s in down] == [float(-i) for i in range(1, 11)]
    assert down[0].values["mode"] == "down" and down[0].units == {"delay": "s"}


async def test_random_stays_between_min_and_max(driver: DriverInterface) -> None:
    async with running(driver):
        samples = await run_one(driver, task("random", min="5", max=6))
    values = [s.values["val"] for s in samples]
    assert len(values) == 10 and all(isinstance(v, float) and 5 <= v <= 6 for v in values)
    assert len(set(values)) > 1


async def test_delay_blocks_in_a_thread_not_on_the_loop(driver: DriverInterface) -> None:
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with running(driver), anyio.create_task_group() as tg:
        tg.start_soon(heartbeat)
        await driver.cmp_set_attr("a", "1", "delay", "150 ms")
        started = anyio.current_time()
        assert (await driver.cmp_measure("a", "1")).success
        assert anyio.current_time() - started >= 0.15
        tg.cancel_scope.cancel()
    assert ticks >= 8  # the loop kept running while the reading blocked


async def test_attrs_constants_and_reset(driver: DriverInterface) -> None:
    attrs = (await driver.cmp_attrs("a", "1")).data
    assert attrs["delay"].units == "s" and attrs["delay"].rw and attrs["delay"].maximum == 10
    assert attrs["mode"].options == {"up", "down"} and not attrs["val"].rw
    consts = (await driver.cmp_constants("a", "1")).data
    assert consts == {"model": "example counter", "serial": "a/1"}
    await driver.cmp_set_attr("a", "1", "max", 99)
    await driver.cmp_reset("a", "1")
    assert (await driver.cmp_get_attr("a", "1", "max")).data == 10.0
