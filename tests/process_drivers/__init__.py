"""A driver that fails the ways only a process of its own survives, for tests.

The example counter plus an rw attr ``fault``, set as a task param; on the
task's first tick the device then:

- ``segfault``: kills its process with SIGSEGV;
- ``block``: blocks its event loop (``time.sleep``, not ``await``) for a minute;
- ``raise``: makes the driver's own background task raise, which ends ``run``;
- ``leak``: allocates 20 MB more on every tick, and keeps it.

``pid`` (a read-only attr) says which process serves the component.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import anyio
from anyio.abc import TaskStatus

from gantry.drivers.example_counter import CounterDevice
from gantry.drivers.interface_2_0 import Attr, Key, ModelDevice, ModelInterface, Task

FAULTS = frozenset({"none", "segfault", "block", "raise", "leak"})
LEAK_PER_TICK = 20_000_000


class CrashyDevice(CounterDevice):
    driver: CrashyDriver

    def _defaults(self) -> None:
        super()._defaults()
        self.fault = "none"

    def attrs(self) -> dict[str, Attr]:
        return super().attrs() | {
            "fault": Attr(type=str, rw=True, options=FAULTS),
            "pid": Attr(type=int, status=True),
        }

    async def get_attr(self, attr: str) -> Any:
        if attr == "pid":
            return os.getpid()
        return await super().get_attr(attr)

    async def do_task(self, task: Task, *, t_start: float, t_now: float) -> None:
        await super().do_task(task, t_start=t_start, t_now=t_now)
        if self.fault == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif self.fault == "block":
            time.sleep(60)  # noqa: ASYNC251  # on the loop: the whole process stops answering
        elif self.fault == "raise":
            self.driver.explode.set()
        elif self.fault == "leak":
            self.driver.hoard.append(b"x" * LEAK_PER_TICK)


class CrashyDriver(ModelInterface):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.explode = anyio.Event()
        self.hoard: list[bytes] = []

    def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
        return CrashyDevice(self, key, **kwargs)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._poller)
            await tg.start(super().run)
            task_status.started()

    async def _poller(self) -> None:
        """A driver's own background work (a vendor poll loop): here, one that fails."""
        await self.explode.wait()
        raise RuntimeError("injected fault: the poll loop lost the instrument")
