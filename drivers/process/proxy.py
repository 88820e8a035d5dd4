"""``DriverProcess``: a driver served by its own process, behind the same contract.

The server calls it exactly like an in-process ``ModelInterface``; each call
goes over the channel to the driver in the process and its Reply comes back
rebuilt. ``run`` supervises: it starts the process, and whenever the process
dies, blocks or outgrows its memory it fails the tasks that were running
there (each with the reason, naming the driver), starts it again after a
backoff, and registers its components again. Calls made meanwhile wait for
it (their callers bound the wait); calls in flight fail with the reason.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskStatus

from gantry.drivers.errors import DriverError
from gantry.drivers.interface_2_0 import (
    ModelDevice,
    ModelInterface,
    Reply,
    Task,
    TaskInfo,
    TaskListener,
    TaskState,
)
from gantry.drivers.process.child import Child, ProcessOptions
from gantry.drivers.process.link import Link, StartFailed
from gantry.drivers.process.spec import Spec
from gantry.drivers.types import Key

log = logging.getLogger(__name__)

#: Restart delays: the first, the longest, and the run time after which a
#: process counts as healthy again (the delay starts over).
BACKOFF_FIRST, BACKOFF_MAX, HEALTHY_AFTER = 0.5, 30.0, 60.0
#: Finished task ids remembered, so a late reply cannot bring one back.
KEEP_ENDED = 1000


class DriverProcess(ModelInterface):
    """Driver ``name`` in a process of its own; ``restarts`` counts how often it was restarted."""

    def __init__(
        self,
        name: str,
        spec: Spec,
        settings: Mapping[str, Any] | None = None,
        *,
        on_task_change: TaskListener | None = None,
        options: ProcessOptions | None = None,
        log_path: Path | None = None,
        logging_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(settings, on_task_change=on_task_change)
        self.name = name
        self.log_path = log_path
        self.restarts = 0
        #: why the process last ended, for people (health, logs), and when (epoch s)
        self.last_failure: str | None = None
        self.last_failure_at: float | None = None
        hello = {
            "driver": name,
            "spec": spec,
            "settings": self.settings,
            "path": list(sys.path),
            "logging": dict(logging_config or {}),
        }
        self.child = Child(
            f"driver {name!r}", hello, options or ProcessOptions(), log_path, self._changed
        )
        self._link: Link | None = None
        self._up = anyio.Event()
        self._registered: dict[Key, dict[str, Any]] = {}
        self._running: dict[str, TaskInfo] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()

    def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
        raise DriverError(f"components of driver {self.name!r} live in its process")

    @property
    def pid(self) -> int | None:
        return self.child.pid

    # -- supervision -----------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep the process serving until cancelled; the first start failing is an error."""
        started = False
        delay = BACKOFF_FIRST

        async def ready(link: Link) -> None:
            nonlocal started
            if started:
                await self._register_again(link)
            self._link = link
            self._up.set()
            if not started:
                started = True
                task_status.started()

        while True:
            began = anyio.current_time()
            try:
                reason = await self.child.run(ready)
            except StartFailed as exc:
                if not started:
                    raise DriverError(f"driver {self.name!r} could not start: {exc}") from None
                reason = f"its process could not start again: {exc}"
            self._down(reason)
            if anyio.current_time() - began > HEALTHY_AFTER:
                delay = BACKOFF_FIRST
            log.warning("driver %s: %s; restarting in %g s", self.name, reason, delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
            self.restarts += 1

    def _down(self, reason: str) -> None:
        self._link = None
        self._up = anyio.Event()
        self.last_failure, self.last_failure_at = reason, time.time()
        msg = f"{self.child.explain(reason)}; the driver is being restarted"
        for info in list(self._running.values()):
            update = {"state": TaskState.FAILED, "msg": msg, "ended_at": time.time()}
            self._changed(info.model_copy(update=update))
        self._running.clear()

    async def _register_again(self, link: Link) -> None:
        for (address, channel), kwargs in self._registered.items():
            reply = await link.call("cmp_register", (address, channel), kwargs)
            if not reply.success:
                log.warning(
                    "driver %s: %s/%s not registered again: %s",
                    self.name,
                    address,
                    channel,
                    reply.msg,
                )

    def _changed(self, info: TaskInfo) -> None:
        if info.state.is_final:
            self._running.pop(info.id, None)
            self._ended[info.id] = None
            while len(self._ended) > KEEP_ENDED:
                self._ended.popitem(last=False)
        elif info.id not in self._ended:
            self._running[info.id] = info
        self.report_task(info)

    async def _call(self, method: str, *args: Any, **kwargs: Any) -> Reply:
        link = self._link
        while link is None:
            await self._up.wait()
            link = self._link
        return await link.call(method, args, kwargs)

    # -- the contract, forwarded ---------------------------------------------------------

    async def cmp_register(self, address: str, channel: str, **kwargs: Any) -> Reply:
        reply = await self._call("cmp_register", address, channel, **kwargs)
        if reply.success:
            self._registered[(address, channel)] = kwargs
        return reply

    async def cmp_teardown(self, address: str, channel: str) -> Reply:
        reply = await self._call("cmp_teardown", address, channel)
        if reply.success:
            self._registered.pop((address, channel), None)
        return reply

    async def cmp_reset(self, address: str, channel: str) -> Reply:
        return await self._call("cmp_reset", address, channel)

    async def cmp_get_attr(self, address: str, channel: str, attr: str) -> Reply:
        return await self._call("cmp_get_attr", address, channel, attr)

    async def cmp_set_attr(self, address: str, channel: str, attr: str, val: Any) -> Reply:
        return await self._call("cmp_set_attr", address, channel, attr, val)

    async def cmp_attrs(self, address: str, channel: str) -> Reply:
        return await self._call("cmp_attrs", address, channel)

    async def cmp_capabilities(self, address: str, channel: str) -> Reply:
        return await self._call("cmp_capabilities", address, channel)

    async def cmp_constants(self, address: str, channel: str) -> Reply:
        return await self._call("cmp_constants", address, channel)

    async def cmp_status(self, address: str, channel: str) -> Reply:
        return await self._call("cmp_status", address, channel)

    async def cmp_last_data(self, address: str, channel: str) -> Reply:
        return await self._call("cmp_last_data", address, channel)

    async def cmp_measure(self, address: str, channel: str) -> Reply:
        return await self._call("cmp_measure", address, channel)

    async def task_validate(
        self, address: str, channel: str, task: Task | Mapping[str, Any]
    ) -> Reply:
        return await self._call("task_validate", address, channel, task)

    async def task_submit(
        self, address: str, channel: str, task: Task | Mapping[str, Any]
    ) -> Reply:
        reply = await self._call("task_submit", address, channel, task)
        info = reply.data if reply.success else None
        if isinstance(info, TaskInfo) and not info.state.is_final and info.id not in self._ended:
            self._running.setdefault(info.id, info)
        return reply

    async def task_status(self, address: str, channel: str, task_id: str | None = None) -> Reply:
        return await self._call("task_status", address, channel, task_id)

    async def task_stop(self, address: str, channel: str, task_id: str | None = None) -> Reply:
        return await self._call("task_stop", address, channel, task_id)

    async def task_data(self, address: str, channel: str) -> Reply:
        return await self._call("task_data", address, channel)

    async def status(self) -> Reply:
        return await self._call("status")

    async def reset(self) -> Reply:
        return await self._call("reset")
