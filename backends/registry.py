"""Discovery of backends through the ``gantry.backends`` entry-point group.

A backend that fails to import is recorded with its error and reported (by
``GET /api/v1/backends``); it never stops the server or the other backends.

Backends written for gwf (group ``gwf.backends``) are offered as
``gwf-<name>``, hosted by :mod:`gantry.backends.gwf_host`, but only when
enabled by name: gwf's ``local`` backend needs a running ``gwf workers``, so
a default start must not depend on them.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from gantry.backends.base import Backend

GROUP = "gantry.backends"
GWF_GROUP = "gwf.backends"
GWF_PREFIX = "gwf-"


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


def _load_gwf(ep: EntryPoint) -> BackendEntry:
    name = GWF_PREFIX + ep.name
    try:
        with warnings.catch_warnings():  # gwf 1.7 imports pkg_resources and distutils
            warnings.simplefilter("ignore", DeprecationWarning)
            cls = ep.load()
            from gwf.backends import Backend as GwfBackend  # type: ignore[import-untyped]
    except Exception as exc:
        return BackendEntry(name, ep.value, None, f"import failed: {type(exc).__name__}: {exc}")
    if not (isinstance(cls, type) and issubclass(cls, GwfBackend)):
        return BackendEntry(name, ep.value, None, f"{ep.value} is not a gwf Backend subclass")
    from gantry.backends.gwf_host import hosted

    return BackendEntry(name, ep.value, hosted(ep.name, cls), None)


def gwf_backend_names() -> list[str]:
    """The ``gwf-<name>`` backends that could be enabled (nothing is imported)."""
    return sorted(GWF_PREFIX + ep.name for ep in entry_points(group=GWF_GROUP))


def discover(
    group: str = GROUP, *, enabled: Collection[str] | None = None
) -> dict[str, BackendEntry]:
    """Every installed backend, loaded or with the reason it could not be.

    gwf backends are included only when ``enabled`` names them (``gwf-slurm``).
    """
    found = {ep.name: _load(ep) for ep in sorted(entry_points(group=group), key=lambda e: e.name)}
    wanted = set(enabled or ())
    for ep in sorted(entry_points(group=GWF_GROUP), key=lambda e: e.name):
        if GWF_PREFIX + ep.name in wanted and GWF_PREFIX + ep.name not in found:
            found[GWF_PREFIX + ep.name] = _load_gwf(ep)
    return found
