"""Finding a tomato driver package the way tomato's daemon does: module ``tomato_<name>``.

A devices file may name it ``tomato:example_counter``, by its package name
``tomato-example-counter`` or by its module ``tomato_example_counter``.
"""

from __future__ import annotations

import importlib
import inspect
import re
from types import ModuleType
from typing import Any

from gantry.drivers.errors import DriverError

PREFIX = "tomato:"
#: tomato's interface versions the adapter drives, by their module.
SUPPORTED = {
    "tomato.driverinterface_2_0": "2.0",
    "tomato.driverinterface_2_1": "2.1",
}
_SPELLING = re.compile(r"^tomato[-_][A-Za-z0-9_.-]+$")


class TomatoDriverError(DriverError):
    """A tomato driver cannot be used; the message names it and says what to do."""


def is_tomato_name(name: str) -> bool:
    """``tomato:x``, ``tomato-x`` or ``tomato_x``: a name the adapter resolves."""
    return (name.startswith(PREFIX) and len(name) > len(PREFIX)) or bool(_SPELLING.match(name))


def module_name(name: str) -> str:
    """The module tomato would import for ``name`` (``tomato_example_counter``)."""
    short = name.removeprefix(PREFIX) if name.startswith(PREFIX) else name[len("tomato_") :]
    return "tomato_" + short.replace("-", "_").replace(".", "_")


def package_name(name: str) -> str:
    return module_name(name).replace("_", "-")


def load_tomato_class(name: str) -> tuple[type[Any], str]:
    """The ``DriverInterface`` of tomato driver ``name`` and its interface version."""
    modname = module_name(name)
    try:
        module = importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        if exc.name not in (modname, "tomato"):
            raise TomatoDriverError(
                f"tomato driver {name!r} (module {modname}) needs {exc.name!r}, which is not "
                f"installed; fix: pip install {exc.name}"
            ) from exc
        raise TomatoDriverError(
            f"tomato driver {name!r} is not installed (no module {modname}); fix: "
            f"pip install {package_name(name)} 'tomato==2.2', or correct the driver name in "
            "the devices file"
        ) from exc
    cls = getattr(module, "DriverInterface", None)
    where = _file(module)
    if not isinstance(cls, type):
        raise TomatoDriverError(
            f"tomato driver {name!r}: module {modname} ({where}) has no DriverInterface class; "
            "a tomato driver module exposes `DriverInterface`, a subclass of "
            "tomato.driverinterface_2_1.ModelInterface"
        )
    version = interface_version(cls)
    if version is None:
        bases = ", ".join(sorted({b.__module__ for b in cls.__mro__[1:-1]})) or "object"
        supported = ", ".join(f"{m} ({v})" for m, v in SUPPORTED.items())
        raise TomatoDriverError(
            f"tomato driver {name!r}: {modname}.DriverInterface ({where}) is built on {bases}, "
            f"an interface version gantry does not drive; supported: {supported}. Fix: install "
            f"a release of {package_name(name)} made for tomato 2.x (with 'tomato==2.2')"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise TomatoDriverError(
            f"tomato driver {name!r}: {modname}.DriverInterface ({where}) does not implement "
            f"{missing}"
        )
    return cls, version


def interface_version(cls: type[Any]) -> str | None:
    """ "2.0"/"2.1" if ``cls`` derives from a ModelInterface tomato 2.2 ships, else None."""
    for base in cls.__mro__:
        if base.__name__ == "ModelInterface" and base.__module__ in SUPPORTED:
            return SUPPORTED[base.__module__]
    return None


def _file(module: ModuleType) -> str:
    return str(getattr(module, "__file__", None) or module.__name__)
