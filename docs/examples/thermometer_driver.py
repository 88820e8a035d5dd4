"""A heater with a thermometer: the driver written in docs/write-a-driver.md.

The instrument speaks a line protocol over a serial port. ``SimulatedPort``
stands in for the port (pyserial's ``Serial`` in real life) so the example
runs anywhere; it blocks like a real port does.
"""

from __future__ import annotations

import time
from typing import Any

from gantry.drivers.interface_2_0 import Attr, Key, ModelDevice, ModelInterface, Task, Value


class SimulatedPort:
    """A blocking, line-based instrument: ``SET 25``, ``SET?``, ``TEMP?``."""

    def __init__(self, name: str, baudrate: int) -> None:
        self.name, self.baudrate = name, baudrate
        self.temperature = self.setpoint = 20.0

    def query(self, command: str) -> str:
        time.sleep(0.001)  # the round trip over the wire
        verb, _, arg = command.partition(" ")
        if verb == "SET":
            self.setpoint = float(arg)
            return "OK"
        if verb == "SET?":
            return f"{self.setpoint:.3f}"
        if verb == "TEMP?":
            self.temperature += (self.setpoint - self.temperature) * 0.2
            return f"{self.temperature:.3f}"
        raise OSError(f"instrument answered ERR to {command!r}")


class HeaterDevice(ModelDevice):
    """One heater: the address is its serial port, the channel its zone."""

    def __init__(self, driver: ModelInterface, key: Key, **kwargs: Any) -> None:
        super().__init__(driver, key, **kwargs)
        baudrate = int(driver.settings.get("baudrate", 9600))
        self.port = SimulatedPort(key[0], baudrate)
        self.ramp_rate = 0.0
        self.constants = {"model": "TH-100 (simulated)", "baudrate": baudrate}

    def attrs(self) -> dict[str, Attr]:
        return {
            "temperature": Attr(type=float, status=True, units="degC"),
            "setpoint": Attr(
                type=float, rw=True, status=True, units="degC", minimum=-50, maximum=150
            ),
            "ramp_rate": Attr(type=float, rw=True, units="K/min", minimum=0, maximum=60),
        }

    def capabilities(self) -> set[str]:
        return {"hold", "ramp"}

    async def get_attr(self, attr: str) -> Any:
        if attr == "ramp_rate":
            return self.ramp_rate
        command = "TEMP?" if attr == "temperature" else "SET?"
        return float(await self.run_sync(self.port.query, command))

    async def set_attr(self, attr: str, val: Any) -> None:
        if attr == "ramp_rate":
            self.ramp_rate = val
        else:
            await self.run_sync(self.port.query, f"SET {val}")

    async def do_measure(self) -> dict[str, Value]:
        return {
            "temperature": await self.get_attr("temperature"),
            "setpoint": await self.get_attr("setpoint"),
        }

    async def do_task(self, task: Task, *, t_start: float, t_now: float) -> None:
        if task.technique_name == "ramp" and t_now > t_start:
            step = self.ramp_rate / 60 * task.sampling_interval
            setpoint = await self.get_attr("setpoint")
            await self.set_attr("setpoint", min(setpoint + step, 150.0))
        self.store(await self.do_measure())

    async def reset(self) -> None:
        await super().reset()
        await self.set_attr("setpoint", 20.0)
        self.ramp_rate = 0.0


class DriverInterface(ModelInterface):
    def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
        return HeaterDevice(self, key, **kwargs)
