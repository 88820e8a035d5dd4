"""Discovery of drivers through the entry-point group ``gantry.drivers``.

An entry point names a driver module that exposes ``DriverInterface``
(``example_counter = gantry.drivers.example_counter``), or the class itself
(``mine = mypkg.driver:DriverInterface``). A driver that fails to import or
is not a valid ``ModelInterface`` is recorded with its error; it raises only
when someone asks for it, and never hides the others.

tomato driver packages need no entry point: a name like ``tomato:example_counter``
(or ``tomato-example-counter``, ``tomato_example_counter``) resolves, on first
use, to the adapter of :mod:`gantry.drivers.tomato_host` over the module
``tomato_example_counter``. A tomato driver that cannot be used is recorded
like any broken driver, with the reason and the fix.
"""

from __future__ import annotations

import functools
import inspect
import logging
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import (
    EntryPoint,
    PackageNotFoundError,
    distribution,
    entry_points,
    packages_distributions,
    version,
)
from types import ModuleType
from typing import Any

from gantry.drivers.errors import DriverError
from gantry.drivers.interface_2_0 import ModelInterface as ModelInterface_2_0
from gantry.drivers.interface_2_0 import TaskListener
from gantry.drivers.tomato_host import is_tomato_name, module_name, resolve_tomato_driver

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


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    """Top-level module -> distributions; a scan of every installed one (~0.1 s), so once."""
    return packages_distributions()


@functools.cache
def _package_of(top: str) -> str | None:
    """The distribution holding top-level module ``top``.

    The one named like it (``tomato_x`` -> ``tomato-x``) is asked first: one
    metadata read, where the scan of every distribution costs 0.1-0.3 s of
    CPU at a server's first instrument job. The scan decides otherwise.
    """
    for name in dict.fromkeys((top.replace("_", "-"), top)):
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        declared = (dist.read_text("top_level.txt") or "").split()
        inferred = {f.parts[0].removesuffix(".py") for f in dist.files or ()}
        if top in declared or top in inferred:
            return str(dist.metadata["Name"])
    dists = _distributions().get(top, [])
    return dists[0] if dists else None


def driver_software(cls: type[ModelInterface_2_0]) -> dict[str, str | None]:
    """What a driver class is, for provenance: its module, package and versions.

    A tomato driver is named by its own module (not gantry's adapter) and
    its own interface version; ``package`` is the installed distribution
    holding the module (None when it was not installed as one). Blocking
    the first time: call it on a worker thread.
    """
    module = str(getattr(cls, "tomato_module", cls.__module__))
    interface = str(getattr(cls, "tomato_version", cls.version))
    package = _package_of(module.partition(".")[0])
    try:
        installed = version(package) if package else None
    except PackageNotFoundError:
        installed = None
    return {"module": module, "interface": interface, "package": package, "version": installed}


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


def _load_tomato(name: str) -> DriverEntry:
    target = f"tomato driver module {module_name(name)}"
    try:
        cls = resolve_tomato_driver(name)
    except Exception as exc:  # its import runs third-party code
        logger.warning("driver %r (%s) is unavailable: %s", name, target, exc)
        return DriverEntry(name, target, error=str(exc))
    return DriverEntry(name, target, cls=cls)


def installed_tomato_drivers() -> list[str]:
    """``tomato:<name>`` of every importable ``tomato_<name>`` module (none imported)."""
    found = {m.name for m in pkgutil.iter_modules() if m.name.startswith("tomato_")}
    return sorted(f"tomato:{m.removeprefix('tomato_')}" for m in found)


class DriverNames(list[str]):
    """The installed drivers' names; also "contains" every tomato driver spelling.

    A devices file may name any tomato driver: whether it loads is decided
    when it is used, and a failure is recorded, not fatal.
    """

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or (isinstance(name, str) and is_tomato_name(name))


class DriverRegistry:
    """Every driver found, working or not. Build it at start-up, not at import."""

    def __init__(self, entries: Iterable[DriverEntry] = (), tomato: Iterable[str] = ()) -> None:
        self.entries: dict[str, DriverEntry] = {e.name: e for e in entries}
        #: tomato drivers seen installed, listed by :meth:`names`, loaded on first use
        self.tomato = sorted(tomato)

    @classmethod
    def discover(cls, eps: Iterable[EntryPoint] | None = None) -> DriverRegistry:
        """Load every entry point of ``gantry.drivers`` (or the ones given); list tomato's."""
        found = entry_points(group=GROUP) if eps is None else eps
        tomato = installed_tomato_drivers() if eps is None else []
        return cls((_load(ep) for ep in found), tomato)

    def names(self) -> list[str]:
        return DriverNames(sorted(set(self.entries) | set(self.tomato)))

    def _entry(self, name: str) -> DriverEntry | None:
        entry = self.entries.get(name)
        if entry is None and is_tomato_name(name):
            entry = self.entries[name] = _load_tomato(name)
        return entry

    def broken(self) -> dict[str, str]:
        """Name -> error of every driver that failed to load."""
        return {n: e.error for n, e in sorted(self.entries.items()) if e.error is not None}

    def get(self, name: str) -> type[ModelInterface_2_0]:
        entry = self._entry(name)
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
