"""The drivers of the devices file, running inside the server.

One driver instance per driver the devices file uses, made with the config
keys ``driver.<name>.*``; one component per device channel, registered with
``cmp_register(address, channel)``. Each driver runs its own task group
(``driver.run``) inside the instrument backend's, so a driver that crashes
marks itself broken and never stops the server.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskStatus

from gantry.drivers.interface_2_0 import ModelInterface, Reply, TaskInfo
from gantry.drivers.registry import DriverRegistry
from gantry.instruments.devices import DeviceConfig, Devices
from gantry.jobs.supervise import run_guarded

log = logging.getLogger(__name__)

#: Seconds a driver call made for a person (API, validation) may take.
CALL_TIMEOUT = 10.0


class UnknownComponent(LookupError):
    """No registered component at that device and channel."""


class DriverTimeout(TimeoutError):
    """A driver call did not answer within its time bound."""


@dataclass(slots=True, eq=False)
class Component:
    """One channel of one device: what the API calls a component."""

    device: DeviceConfig
    channel: str
    driver: ModelInterface | None
    #: why the component cannot be used (its driver or its registration failed)
    error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.device.name, self.channel)

    @property
    def label(self) -> str:
        return f"{self.device.name}/{self.channel}"

    @property
    def address(self) -> str:
        return self.device.address

    def usable(self) -> ModelInterface:
        if self.driver is None or self.error is not None:
            raise UnknownComponent(f"component {self.label} is unavailable: {self.error}")
        return self.driver

    async def call(self, method: str, *args: Any, seconds: float = CALL_TIMEOUT) -> Reply:
        """``driver.<method>(address, channel, *args)``, bounded in time."""
        driver = self.usable()
        with anyio.move_on_after(seconds):
            reply: Reply = await getattr(driver, method)(self.address, self.channel, *args)
            return reply
        raise DriverTimeout(
            f"driver {self.device.driver!r} did not answer {method} for component "
            f"{self.label} within {seconds:g} s; the device may be hung"
        )


class DriverHost:
    """Every driver and component of the devices file."""

    def __init__(
        self,
        devices: Devices,
        registry: DriverRegistry,
        settings: Callable[[str], Mapping[str, Any]],
    ) -> None:
        self.devices = devices
        self.registry = registry
        self.drivers: dict[str, ModelInterface] = {}
        #: driver name -> why it is unusable (failed to load, construct or run)
        self.errors: dict[str, str] = {}
        self.components: dict[tuple[str, str], Component] = {}
        self._watchers: dict[str, Callable[[TaskInfo], None]] = {}
        for name in devices.drivers():
            try:
                self.drivers[name] = registry.create(
                    name, settings(name), on_task_change=self._on_task_change
                )
            except Exception as exc:  # a third-party constructor: keep the others
                log.exception("driver %s could not be created", name)
                self.errors[name] = f"could not be created: {type(exc).__name__}: {exc}"
        for dev in devices.devices.values():
            driver = self.drivers.get(dev.driver)
            for channel in dev.channels:
                error = None if driver else f"driver {dev.driver!r} {self.errors.get(dev.driver)}"
                self.components[(dev.name, channel)] = Component(dev, channel, driver, error)

    def component(self, device: str, channel: str) -> Component:
        comp = self.components.get((device, channel))
        if comp is None:
            known = ", ".join(c.label for c in self.components.values()) or "none"
            raise UnknownComponent(
                f"no component {device}/{channel} in the devices file; components: {known}"
            )
        return comp

    # -- task listeners ------------------------------------------------------

    def watch(self, task_id: str, listener: Callable[[TaskInfo], None]) -> None:
        self._watchers[task_id] = listener

    def unwatch(self, task_id: str) -> None:
        self._watchers.pop(task_id, None)

    def _on_task_change(self, info: TaskInfo) -> None:
        listener = self._watchers.get(info.id)
        if listener is not None:
            listener(info)

    # -- runtime -----------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Register every component, then run every driver until cancelled."""
        for comp in self.components.values():
            if comp.driver is None:
                continue
            try:
                reply = await comp.call("cmp_register")
            except DriverTimeout as exc:
                reply = Reply(success=False, msg=str(exc))
            if not reply.success:
                comp.error = f"registration failed: {reply.msg}"
                log.warning("component %s is unavailable: %s", comp.label, reply.msg)
        async with anyio.create_task_group() as tg:
            for name, driver in self.drivers.items():
                await tg.start(self._run_driver, name, driver)
            task_status.started()

    async def _run_driver(
        self, name: str, driver: ModelInterface, *, task_status: TaskStatus[None]
    ) -> None:
        def crashed(exc: Exception) -> None:
            self.errors[name] = f"stopped with an error: {type(exc).__name__}: {exc}"
            for comp in self.components.values():
                if comp.driver is driver:
                    comp.error = f"driver {name!r} {self.errors[name]}"

        await run_guarded(f"driver {name}", driver.run, on_crash=crashed, task_status=task_status)
