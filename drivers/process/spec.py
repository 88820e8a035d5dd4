"""How a driver process finds its driver class: the same class the server resolved.

A spec is plain data sent in the first frame: ``{"tomato": name}`` for a
tomato package (the adapter class is made anew in the process), or
``{"import": "module:Qual.Name"}`` for a gantry driver. A class that only
exists inside a function or in ``__main__`` has no spec: it cannot be
imported by another process, so it stays in the server.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from gantry.drivers.interface_2_0 import ModelInterface
from gantry.drivers.registry import load_driver_class
from gantry.drivers.tomato_host import TomatoDriver, resolve_tomato_driver

Spec = dict[str, str]


def spec_for(name: str, cls: type[ModelInterface]) -> Spec | None:
    """The spec that loads ``cls`` (driver ``name``) in a driver process, or None if none can."""
    if issubclass(cls, TomatoDriver):
        return {"tomato": name}
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        return None
    return {"import": f"{cls.__module__}:{cls.__qualname__}"}


def load_spec(spec: Mapping[str, Any]) -> type[ModelInterface]:
    """The driver class a spec names (in the driver process); raises with the reason."""
    if isinstance(tomato := spec.get("tomato"), str):
        return resolve_tomato_driver(tomato)
    target = spec.get("import")
    if not isinstance(target, str) or ":" not in target:
        raise ValueError(f"driver spec {dict(spec)!r} names no tomato driver and no import")
    module, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return load_driver_class(obj)


def extend_path(entries: Iterable[Any]) -> None:
    """Put the server's import path entries the process lacks at its end.

    So a driver the server imports from a checkout or a test folder imports
    here too; the process's own entries keep precedence.
    """
    for entry in entries:
        if isinstance(entry, str) and entry not in sys.path:
            sys.path.append(entry)
