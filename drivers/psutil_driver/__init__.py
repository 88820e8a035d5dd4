"""``psutil``: a real sensor driver reading this machine's counters.

Components live at address ``"localhost"``; the channel picks the sensor:

=========  =====================================================================
channel    readings (all read-only, all in every sample)
=========  =====================================================================
cpu        ``percent`` (percent), ``load_1min``
memory     ``used``, ``available`` (B), ``percent`` (percent)
disk       ``usage_percent`` (percent) and ``free`` (B) of ``settings["disk_path"]``
           (default ``/``), ``read_bytes``/``write_bytes`` (B),
           ``read_rate``/``write_rate`` (B/s)
network    ``bytes_sent``/``bytes_recv`` (B), ``send_rate``/``recv_rate`` (B/s)
=========  =====================================================================

The one technique is ``monitor``: a reading every ``sampling_interval``.
Percentages and rates cover the time since the component's previous reading.
Readings go through :meth:`ModelDevice.run_sync`: psutil reads ``/proc``,
which is file I/O and does not belong on the event loop.
"""

from __future__ import annotations

import os
import time
from abc import abstractmethod
from typing import Any, ClassVar

import psutil  # type: ignore[import-untyped]  # psutil ships no type hints

from gantry.drivers.interface_2_0 import (
    Attr,
    AttrError,
    DriverError,
    Key,
    ModelDevice,
    ModelInterface,
    Value,
)

ADDRESS = "localhost"


class SensorDevice(ModelDevice):
    """A read-only sensor: each reading is every attr, measured in one go."""

    #: reading name -> units (None: a plain number)
    readings: ClassVar[dict[str, str | None]]

    def __init__(self, driver: ModelInterface, key: Key, **kwargs: Any) -> None:
        super().__init__(driver, key, **kwargs)
        self._last: dict[str, float] = {}
        self._last_time: float | None = None

    def attrs(self) -> dict[str, Attr]:
        return {
            name: Attr(type=float, status=True, units=units)
            for name, units in self.readings.items()
        }

    def capabilities(self) -> set[str]:
        return {"monitor"}

    async def get_attr(self, attr: str) -> Any:
        return (await self.do_measure())[attr]

    async def set_attr(self, attr: str, val: Any) -> None:
        raise AttrError(f"{attr!r} is a reading of {self.key}; it cannot be set")

    async def do_measure(self) -> dict[str, Value]:
        return await self.run_sync(self.read)

    @abstractmethod
    def read(self) -> dict[str, Value]:
        """One reading; blocking (runs in a worker thread)."""

    def rates(self, counters: dict[str, float]) -> dict[str, float | None]:
        """Per-second change of each counter since the previous reading.

        None on the first reading, and when a counter went backwards (reset).
        """
        now = time.monotonic()
        elapsed = 0.0 if self._last_time is None else now - self._last_time
        out: dict[str, float | None] = {}
        for name, value in counters.items():
            before = self._last.get(name)
            valid = before is not None and elapsed > 0 and value >= before
            out[name] = (value - before) / elapsed if valid and before is not None else None
        self._last, self._last_time = counters, now
        return out


class CpuDevice(SensorDevice):
    readings: ClassVar[dict[str, str | None]] = {"percent": "percent", "load_1min": None}

    def __init__(self, driver: ModelInterface, key: Key, **kwargs: Any) -> None:
        super().__init__(driver, key, **kwargs)
        self.constants = {"cores": os.cpu_count()}

    def read(self) -> dict[str, Value]:
        times = psutil.cpu_times()
        idle = float(times.idle + getattr(times, "iowait", 0.0))
        total = {"busy": float(sum(times)) - idle, "idle": idle}
        rate = self.rates(total)
        busy, free = rate["busy"], rate["idle"]
        if busy is None or free is None or busy + free <= 0:
            # No previous reading (or no time passed): the average since boot.
            busy, free = total["busy"], total["idle"]
        return {"percent": 100.0 * busy / (busy + free), "load_1min": os.getloadavg()[0]}


class MemoryDevice(SensorDevice):
    readings: ClassVar[dict[str, str | None]] = {
        "used": "B",
        "available": "B",
        "percent": "percent",
    }

    def __init__(self, driver: ModelInterface, key: Key, **kwargs: Any) -> None:
        super().__init__(driver, key, **kwargs)
        self.constants = {"total_bytes": int(psutil.virtual_memory().total)}

    def read(self) -> dict[str, Value]:
        mem = psutil.virtual_memory()
        return {
            "used": float(mem.used),
            "available": float(mem.available),
            "percent": float(mem.percent),
        }


class DiskDevice(SensorDevice):
    readings: ClassVar[dict[str, str | None]] = {
        "usage_percent": "percent",
        "free": "B",
        "read_bytes": "B",
        "write_bytes": "B",
        "read_rate": "B/s",
        "write_rate": "B/s",
    }

    def __init__(self, driver: ModelInterface, key: Key, **kwargs: Any) -> None:
        super().__init__(driver, key, **kwargs)
        self.path = str(driver.settings.get("disk_path", "/"))
        if not os.path.isdir(self.path):
            raise DriverError(f"disk_path {self.path!r} is not a directory on this machine")
        self.constants = {"path": self.path}

    def read(self) -> dict[str, Value]:
        usage = psutil.disk_usage(self.path)
        io = psutil.disk_io_counters()  # None where the kernel exposes no disks
        counters = (
            {} if io is None else {"read": float(io.read_bytes), "write": float(io.write_bytes)}
        )
        rate = self.rates(counters)
        return {
            "usage_percent": float(usage.percent),
            "free": float(usage.free),
            "read_bytes": counters.get("read"),
            "write_bytes": counters.get("write"),
            "read_rate": rate.get("read"),
            "write_rate": rate.get("write"),
        }


class NetworkDevice(SensorDevice):
    readings: ClassVar[dict[str, str | None]] = {
        "bytes_sent": "B",
        "bytes_recv": "B",
        "send_rate": "B/s",
        "recv_rate": "B/s",
    }

    def read(self) -> dict[str, Value]:
        net = psutil.net_io_counters()
        counters = {"sent": float(net.bytes_sent), "recv": float(net.bytes_recv)}
        rate = self.rates(counters)
        return {
            "bytes_sent": counters["sent"],
            "bytes_recv": counters["recv"],
            "send_rate": rate["sent"],
            "recv_rate": rate["recv"],
        }


CHANNELS: dict[str, type[SensorDevice]] = {
    "cpu": CpuDevice,
    "memory": MemoryDevice,
    "disk": DiskDevice,
    "network": NetworkDevice,
}


class DriverInterface(ModelInterface):
    """Settings: ``disk_path`` (default ``/``), the file system the disk channel watches."""

    def DeviceFactory(self, key: Key, **kwargs: Any) -> ModelDevice:
        address, channel = key
        if address != ADDRESS:
            raise DriverError(f"the psutil driver reads only this machine: use address {ADDRESS!r}")
        device_class = CHANNELS.get(channel)
        if device_class is None:
            raise DriverError(
                f"psutil has no channel {channel!r}; use one of: {', '.join(sorted(CHANNELS))}"
            )
        return device_class(self, key, **kwargs)
