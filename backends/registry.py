"""Discovery of backends through the ``gantry.backends`` entry-point group.

A backend that fails to import is recorded with its error and reported (by
``GET /api/v1/backends``); it never stops the server or the other backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from gantry.backends.base import Backend

GROUP = "gantry.backends"


@dataclass(frozen=True, slots=True)
class BackendEntry:
    name: str
    value: str
    cls: type[Backend] | None
    error: str | None

    @property
    def loaded(self) -> bool:
        return self.cls is not None


def _load(ep: EntryPoint) -> BackendEntry:
    try:
        cls = ep.load()
    except Exception as exc:  # any import error of a third-party plug-in
        return BackendEntry(ep.name, ep.value, None, f"import failed: {type(exc).__name__}: {exc}")
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        return BackendEntry(ep.name, ep.value, None, f"{ep.value} is not a gantry Backend subclass")
    return BackendEntry(ep.name, ep.value, cls, None)


def discover(group: str = GROUP) -> dict[str, BackendEntry]:
    """Every installed backend, loaded or with the reason it could not be."""
    return {ep.name: _load(ep) for ep in sorted(entry_points(group=group), key=lambda e: e.name)}
