"""The drivers of the devices file, each in a process of its own or inside the server.

One driver per driver the devices file uses, made with the config keys
``driver.<name>.*``; one component per device channel, registered with
``cmp_register(address, channel)`` once its driver runs. By default a driver
runs in its own process (:class:`~gantry.drivers.process.DriverProcess`,
supervised and restarted, logging to ``<data_dir>/logs/driver-<name>.log``);
one that asks (``in_process``, or ``[drivers.<name>] in_process = true`` in
the devices file) runs in the server. Either way each driver runs its own
task group (``driver.run``) inside the instrument backend's, so a driver
that crashes never stops the server.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from gantry.drivers.interface_2_0 import ModelInterface, Reply, TaskInfo
from gantry.drivers.process import DriverProcess, ProcessOptions, log_file, logging_config, spec_for
from gantry.drivers.registry import DriverRegistry
from gantry.instruments.devices import DeviceConfig, Devices, DriverOptions
from gantry.jobs.supervise import run_guarded
from gantry.logs import JsonFormatter

log = logging.getLogger(__name__)

#: Seconds a driver call made for a person (API, validation) may take.
CALL_TIMEOUT = 10.0
#: Task changes kept for tasks nobody watches yet (a driver process may report a
#: task's start before the reply to its submit has reached the runner).
EARLY_CHANGES = 1000
#: The formatter driver processes log with: the server's JSON lines.
LOG_FORMATTER = f"{JsonFormatter.__module__}.{JsonFormatter.__qualname__}"


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
        *,
        log_dir: Path | None = None,
    ) -> None:
        self.devices = devices
        self.registry = registry
        #: where driver processes log (None: on the server's stderr)
        self.log_dir = log_dir
        self.drivers: dict[str, ModelInterface] = {}
        #: driver name -> why it is unusable (failed to load, construct or run)
        self.errors: dict[str, str] = {}
        self.components: dict[tuple[str, str], Component] = {}
        #: by driver name: samples stored, and sampling ticks its components missed
        self.samples: Counter[str] = Counter()
        self.missed: Counter[str] = Counter()
        self._watchers: dict[str, Callable[[TaskInfo], None]] = {}
        self._early: OrderedDict[str, list[TaskInfo]] = OrderedDict()
        for name in devices.drivers():
            try:
                self.drivers[name] = self._create(name, settings(name))
            except Exception as exc:  # a third-party constructor: keep the others
                log.exception("driver %s could not be created", name)
                self.errors[name] = f"could not be created: {type(exc).__name__}: {exc}"
        for dev in devices.devices.values():
            driver = self.drivers.get(dev.driver)
            for channel in dev.channels:
                error = None if driver else f"driver {dev.driver!r} {self.errors.get(dev.driver)}"
                self.components[(dev.name, channel)] = Component(dev, channel, driver, error)

    def _create(self, name: str, settings: Mapping[str, Any]) -> ModelInterface:
        """Driver ``name`` in a process of its own, unless it stays in the server."""
        cls = self.registry.get(name)
        options = self.devices.driver_options.get(name) or DriverOptions()
        in_process = cls.in_process if options.in_process is None else options.in_process
        spec = None if in_process else spec_for(name, cls)
        if spec is None:
            if not in_process:
                log.warning(
                    "driver %s (%s.%s) cannot be imported by another process; it runs in the "
                    "server",
                    name,
                    cls.__module__,
                    cls.__qualname__,
                )
            return cls(settings, on_task_change=self._on_task_change)
        return DriverProcess(
            name,
            spec,
            settings,
            on_task_change=self._on_task_change,
            options=ProcessOptions(
                hang_timeout=options.hang_timeout, max_rss_mb=options.max_rss_mb
            ),
            log_path=log_file(self.log_dir, name) if self.log_dir is not None else None,
            logging_config=logging_config(
                name, logging.getLogger("gantry").getEffectiveLevel(), LOG_FORMATTER
            ),
        )

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
        """Tell ``listener`` every change of the task, those that came before too."""
        self._watchers[task_id] = listener
        for info in self._early.pop(task_id, ()):
            listener(info)

    def unwatch(self, task_id: str) -> None:
        self._watchers.pop(task_id, None)

    def _on_task_change(self, info: TaskInfo) -> None:
        listener = self._watchers.get(info.id)
        if listener is not None:
            listener(info)
            return
        self._early.setdefault(info.id, []).append(info)
        while len(self._early) > EARLY_CHANGES:
            self._early.popitem(last=False)

    # -- runtime -----------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start every driver (their processes all at once), register every component,
        then run until cancelled."""
        async with anyio.create_task_group() as tg:
            async with anyio.create_task_group() as starting:
                for name, driver in self.drivers.items():
                    starting.start_soon(self._start_driver, tg, name, driver)
            for comp in self.components.values():
                if comp.driver is None or comp.error is not None:
                    continue
                try:
                    reply = await comp.call("cmp_register")
                except DriverTimeout as exc:
                    reply = Reply(success=False, msg=str(exc))
                if not reply.success:
                    comp.error = f"registration failed: {reply.msg}"
                    log.warning("component %s is unavailable: %s", comp.label, reply.msg)
            task_status.started()

    async def _start_driver(self, tg: TaskGroup, name: str, driver: ModelInterface) -> None:
        await tg.start(self._run_driver, name, driver)

    async def _run_driver(
        self, name: str, driver: ModelInterface, *, task_status: TaskStatus[None]
    ) -> None:
        def crashed(exc: Exception) -> None:
            self.errors[name] = f"stopped with an error: {type(exc).__name__}: {exc}"
            for comp in self.components.values():
                if comp.driver is driver:
                    comp.error = f"driver {name!r} {self.errors[name]}"

        await run_guarded(f"driver {name}", driver.run, on_crash=crashed, task_status=task_status)
