"""The heater driver checks itself against the driver contract."""

from __future__ import annotations

from thermometer_driver import DriverInterface

from gantry.drivers.testing import check_driver_contract


async def test_heater_keeps_the_driver_contract() -> None:
    await check_driver_contract(
        DriverInterface,
        address="/dev/ttyUSB0",
        channel="zone1",
        technique="ramp",
        params={"setpoint": "30 degC", "ramp_rate": "1 K/s"},
    )
