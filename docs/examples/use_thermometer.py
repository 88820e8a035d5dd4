"""Driving the heater of docs/write-a-driver.md the way the gantry server does."""

from __future__ import annotations

import anyio
from thermometer_driver import DriverInterface

from gantry.drivers.interface_2_0 import Sample, Task


async def main() -> list[Sample]:
    driver = DriverInterface(settings={"baudrate": 19200})
    await driver.cmp_register("/dev/ttyUSB0", "zone1")
    async with anyio.create_task_group() as tg:
        await tg.start(driver.run)  # one worker per component

        ramp = Task(
            component_role="furnace",
            technique_name="ramp",
            task_params={"setpoint": "25 degC", "ramp_rate": "0.5 K/s"},
            max_duration=1.0,
            sampling_interval=0.1,
            task_name="warm up",
        )
        reply = await driver.task_submit("/dev/ttyUSB0", "zone1", ramp)
        print(reply.msg)  # task 'warm up' submitted
        await anyio.sleep(1.2)

        reply = await driver.task_data("/dev/ttyUSB0", "zone1")
        for sample in reply.data[:3]:
            print(sample.uts, sample.values, sample.units)
        tg.cancel_scope.cancel()
    samples: list[Sample] = reply.data
    return samples


if __name__ == "__main__":
    anyio.run(main)
