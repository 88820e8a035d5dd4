"""The psutil driver: this machine's counters as components."""

from __future__ import annotations

import pytest

from gantry.drivers.interface_2_0 import Task, TaskState
from gantry.drivers.psutil_driver import DriverInterface
from gantry.drivers.testing import running, wait_for_task

L = "localhost"


async def test_readings_are_plausible_and_carry_units() -> None:
    driver = DriverInterface()
    for channel in ("cpu", "memory", "disk", "network"):
        assert (await driver.cmp_register(L, channel)).success
    cpu = (await driver.cmp_measure(L, "cpu")).data
    assert 0 <= cpu.values["percent"] <= 100 and cpu.units == {"percent": "percent"}
    mem = (await driver.cmp_measure(L, "memory")).data
    total = (await driver.cmp_constants(L, "memory")).data["total_bytes"]
    assert 0 < mem.values["used"] < total and mem.units["available"] == "B"
    disk = (await driver.cmp_measure(L, "disk")).data
    assert 0 <= disk.values["usage_percent"] <= 100 and disk.units["read_rate"] == "B/s"
    net = (await driver.cmp_measure(L, "network")).data
    assert net.values["send_rate"] is None  # no previous reading yet
    net = (await driver.cmp_measure(L, "network")).data
    assert isinstance(net.values["send_rate"], float) and net.values["send_rate"] >= 0


async def test_monitor_samples_every_interval() -> None:
    driver = DriverInterface()
    await driver.cmp_register(L, "network")
    t = Task(
        component_role="host", technique_name="monitor", max_duration=0.5, sampling_interval=0.1
    )
    async with running(driver):
        info = (await driver.task_submit(L, "network", t)).data
        final = await wait_for_task(driver, L, "network", info.id, 3)
    assert final.state is TaskState.COMPLETED and final.samples == 5
    samples = (await driver.task_data(L, "network")).data
    assert all(s.values["recv_rate"] is not None for s in samples[1:])


async def test_readings_are_read_only() -> None:
    driver = DriverInterface()
    await driver.cmp_register(L, "cpu")
    reply = await driver.cmp_set_attr(L, "cpu", "percent", 5)
    assert not reply.success and "read-only" in reply.msg
    bad = Task(
        component_role="host",
        technique_name="monitor",
        max_duration=1,
        sampling_interval=0.5,
        task_params={"percent": 5},
    )
    assert "read-only" in (await driver.task_validate(L, "cpu", bad)).msg


@pytest.mark.parametrize(
    ("address", "channel", "message"),
    [
        ("192.0.2.1", "cpu", "use address 'localhost'"),
        (L, "gpu", "use one of: cpu, disk, memory, network"),
    ],
)
async def test_unknown_address_or_channel_fails_to_register(
    address: str, channel: str, message: str
) -> None:
    reply = await DriverInterface().cmp_register(address, channel)
    assert not reply.success and message in reply.msg


async def test_disk_path_comes_from_settings() -> None:
    bad = await DriverInterface({"disk_path": "/no/such/dir"}).cmp_register(L, "disk")
    assert not bad.success and "'/no/such/dir' is not a directory" in bad.msg
    driver = DriverInterface({"disk_path": "/tmp"})
    assert (await driver.cmp_register(L, "disk")).success
    assert (await driver.cmp_constants(L, "disk")).data == {"path": "/tmp"}
