"""``example_counter``: a hardware-free driver, the model for writing one.

Like tomato's example counter: any address and channel is a component that
runs two techniques,

- ``count``: ``val`` goes up (or down, ``mode="down"``) by one each sample;
- ``random``: ``val`` is drawn uniformly between the attrs ``min`` and ``max``.

``delay`` simulates a slow instrument: each reading then blocks that long in
a worker thread (through :meth:`ModelDevice.run_sync`, as real blocking I/O
must), which also makes it the tool for testing hung or slow devices.
"""

from __future__ import annotations

import random
import time
from typing import Any

from gantry.drivers.interface_2_0 import Attr, Key, ModelDevice, ModelInterface, Task, Value

MODES = frozenset({"up", "down"})


class CounterDevice(ModelDevice):
    def __init__(self, driver: ModelInterface, key: Key, **kwargs: Any) -> None:
        super().__init__(driver, key, **kwargs)
        self.constants = {"model": "example counter", "serial": f"{key[0]}/{key[1]}"}
        self._defaults()

    def _defaults(self) -> None:
        self.val: float = 0.0
        self.delay = 0.0
        self.min = 0.0
        self.max = 10.0
        self.mode = "up"

    def attrs(self) -> dict[str, Attr]:
        return {
            "val": Attr(type=float, status=True),
            "delay": Attr(type=float, rw=True, status=True, units="s", minimum=0, maximum=10),
            "min": Attr(type=float, rw=True),
            "max": Attr(type=float, rw=True),
            "mode": Attr(type=str, rw=True, status=True, options=MODES),
        }

    def capabilities(self) -> set[str]:
        return {"count", "random"}

    async def get_attr(self, attr: str) -> Any:
        return getattr(self, attr)

    async def set_attr(self, attr: str, val: Any) -> None:
        setattr(self, attr, val)

    async def prepare_task(self, task: Task) -> None:
        self.val = 0.0
        await super().prepare_task(task)

    async def do_task(self, task: Task, *, t_start: float, t_now: float) -> None:
        if task.technique_name == "count":
            self.val += 1 if self.mode == "up" else -1
        else:
            self.val = random.uniform(self.min, self.max)
        await self._wait()
        self.store(self._reading())

    async def do_measure(self) -> dict[str, Value]:
        self.val = random.uniform(self.min, self.max)
        await self._wait()
        return self._reading()

    async def reset(self) -> None:
        await super().reset()
        self._defaults()

    async def _wait(self) -> None:
        # Stands in for blocking hardware I/O; skipped when there is none, so
        # the common path stays on the event loop (no thread hop per sample).
        if self.delay > 0:
            await self.run_sync(time.sleep, self.delay)

    def _reading(self) -> dict[str, Value]:
        return {
            "val": self.val,
            "delay": self.delay,
            "min": self.min,
            "max": self.max,
            "mode": self.mode,
        }


class DriverInterface(ModelInterface):
    def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
        return CounterDevice(self, key, **kwargs)
