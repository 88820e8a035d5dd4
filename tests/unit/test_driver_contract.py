"""The reusable contract check, run against the built-in drivers (and shown to bite)."""

from __future__ import annotations

import pytest

from gantry.drivers.example_counter import DriverInterface as Counter
from gantry.drivers.psutil_driver import CHANNELS
from gantry.drivers.psutil_driver import DriverInterface as Psutil
from gantry.drivers.testing import (
    ContractViolation,
    FaultyDevice,
    FaultyDriver,
    check_driver_contract,
)

STEPS = [
    "register",
    "attrs, capabilities, constants",
    "get/set attr",
    "status, measure",
    "validation",
    "task and data",
    "stop",
    "reset, teardown",
]


async def test_example_counter_keeps_the_contract() -> None:
    passed = await check_driver_contract(
        Counter,
        address="a",
        channel="1",
        technique="count",
        params={"delay": "0 s", "mode": "down"},
        sampling_interval=0.02,
    )
    assert passed == STEPS


async def test_example_counter_random_keeps_the_contract() -> None:
    passed = await check_driver_contract(
        Counter, address="a", channel="2", technique="random", params={"min": 1, "max": "2"}
    )
    assert passed == STEPS


@pytest.mark.parametrize("channel", sorted(CHANNELS))
async def test_psutil_keeps_the_contract(channel: str) -> None:
    passed = await check_driver_contract(
        Psutil, address="localhost", channel=channel, technique="monitor"
    )
    assert passed == STEPS


async def test_the_check_catches_a_driver_that_loses_data() -> None:
    class Forgetful(FaultyDevice):
        def get_data(self) -> list:  # type: ignore[type-arg]
            super().get_data()
            return []

    class Driver(FaultyDriver):
        def DeviceFactory(self, key, **kwargs):  # type: ignore[no-untyped-def]
            return Forgetful(self, key)

    with pytest.raises(ContractViolation, match=r"\[task_data\] no samples"):
        await check_driver_contract(Driver, address="a", channel="1", technique="count")


async def test_the_check_catches_a_driver_that_raises_out_of_a_call() -> None:
    class Raising(FaultyDriver):
        async def cmp_attrs(self, address: str, channel: str):  # type: ignore[no-untyped-def]
            raise RuntimeError("oops")

    with pytest.raises(RuntimeError, match="oops"):
        await check_driver_contract(Raising, address="a", channel="1", technique="count")
