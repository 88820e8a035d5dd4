"""Discovery of drivers through the entry-point group ``gantry.drivers``.

An entry point names a driver module that exposes ``DriverInterface``
(``example_counter = gantry.drivers.example_counter``), or the class itself
(``mine = mypkg.driver:DriverInterface``). A driver that fails to import or
is not a valid ``ModelInterface`` is recorded with its error; it raises only
when someone asks for it, and never hides the others.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any

from gantry.drivers.errors import DriverError
from gantry.drivers.interface_2_0 import ModelInterface as ModelInterface_2_0
from gantry.drivers.interface_2_0 import TaskListener

logger = logging.getLogger(__name__)

GROUP = "gantry.drivers"
#: Interface versions this gantry can drive; a 3.0 would be checked beside 2.0.
SUPPORTED_VERSIONS = ("2.0",)


class DriverUnavailable(DriverError, LookupError):
    """The driver is unknown, or it is known but broken (the message says why)."""


@dataclass(frozen=True, slots=True)
class DriverEntry:
    name: str
    target: str
    cls: type[ModelInterface_2_0] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.cls is not None


def load_driver_class(obj: object) -> type[ModelInterface_2_0]:
    """The ``DriverInterface`` class of a module (or the class itself), checked."""
    cls = getattr(obj, "DriverInterface", None) if isinstance(obj, ModuleType) else obj
    if cls is None:
        raise TypeError("the module has no DriverInterface class")
    if not isinstance(cls, type) or not issubclass(cls, ModelInterface_2_0):
        versions = ", ".join(SUPPORTED_VERSIONS)
        raise TypeError(f"{cls!r} is not a ModelInterface of a supported version ({versions})")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise TypeError(f"{cls.__name__} does not implement {missing}")
    return cls


def _load(ep: EntryPoint) -> DriverEntry:
    try:
        cls = load_driver_class(ep.load())
    except Exception as exc:  # any import-time error of a third-party package
        logger.warning("driver %r (%s) is unavailable: %s", ep.name, ep.value, exc)
        return DriverEntry(ep.name, ep.value, error=f"{type(exc).__name__}: {exc}")
    return DriverEntry(ep.name, ep.value, cls=cls)


class DriverRegistry:
    """Every driver found, working or not. Build it at start-up, not at import."""

    def __init__(self, entries: Iterable[DriverEntry] = ()) -> None:
        self.entries: dict[str, DriverEntry] = {e.name: e for e in entries}

    @classmethod
    def discover(cls, eps: Iterable[EntryPoint] | None = None) -> DriverRegistry:
        """Load every entry point of ``gantry.drivers`` (or the ones given)."""
        found = entry_points(group=GROUP) if eps is None else eps
        return cls(_load(ep) for ep in found)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def broken(self) -> dict[str, str]:
        """Name -> error of every driver that failed to load."""
        return {n: e.error for n, e in sorted(self.entries.items()) if e.error is not None}

    def get(self, name: str) -> type[ModelInterface_2_0]:
        entry = self.entries.get(name)
        if entry is None:
            known = ", ".join(self.names()) or "none"
            raise DriverUnavailable(f"no driver named {name!r}; installed: {known}")
        if entry.cls is None:
            raise DriverUnavailable(
                f"driver {name!r} ({entry.target}) failed to load: {entry.error}"
            )
        return entry.cls

    def create(
        self,
        name: str,
        settings: Mapping[str, Any] | None = None,
        *,
        on_task_change: TaskListener | None = None,
    ) -> ModelInterface_2_0:
        """A new instance of driver ``name`` with its settings."""
        return self.get(name)(settings, on_task_change=on_task_change)
