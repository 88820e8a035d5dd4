"""tomato's shapes in gantry's: Attr, values, and ``xarray.Dataset`` data as Samples.

A tomato driver caches data as an ``xarray.Dataset`` with a ``uts``
dimension. Every point becomes one :class:`Sample`: variables over ``uts``
alone become values of their own name; a variable with more dimensions
(``ordinate[uts, abscissa]``) becomes one value per extra index
(``ordinate[0]``, ``ordinate[1]`` ...), and the coordinates of those extra
dimensions travel with every sample (``abscissa[0]`` ...), so nothing the
driver produced is lost. Units come from each variable's ``units`` attribute.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gantry.drivers.types import Attr, Sample, Value

#: The dimension tomato's data is indexed by.
UTS = "uts"


def magnitude(val: Any, units: str | None = None) -> Any:
    """A ``pint.Quantity`` as its number (in ``units`` if given); anything else unchanged."""
    if hasattr(val, "magnitude") and hasattr(val, "units"):
        if units:
            try:
                val = val.to(units)
            except Exception:  # incompatible units: keep the driver's own
                return plain(val.magnitude)
        return plain(val.magnitude)
    return plain(val)


def plain(val: Any) -> Value:
    """A numpy scalar as a Python one; other non-scalars as text."""
    if val is None or isinstance(val, bool | int | float | str):
        return val
    item = getattr(val, "item", None)
    if callable(item):
        try:
            got = item()
        except (TypeError, ValueError):
            return str(val)
        if got is None or isinstance(got, bool | int | float | str):
            return got
    return str(val)


def gantry_attr(attr: Any) -> Attr:
    """A tomato ``Attr`` (maybe with pint limits and a Quantity type) as gantry's."""
    units: str | None = getattr(attr, "units", None)
    kind = attr.type
    if getattr(kind, "__name__", "") == "Quantity":
        # gantry's numbers are in the attr's units; "2 min" strings still convert.
        kind = float
    options = getattr(attr, "options", None)
    return Attr(
        type=kind,
        rw=bool(attr.rw),
        status=bool(attr.status),
        units=units,
        minimum=_limit(attr.minimum, units),
        maximum=_limit(attr.maximum, units),
        options=frozenset(options) if options is not None else None,
    )


def _limit(val: Any, units: str | None) -> float | None:
    if val is None:
        return None
    got = magnitude(val, units)
    return float(got) if isinstance(got, int | float) else None


class SampleMaker:
    """Turns Datasets into Samples, sharing one units dict per distinct set of units."""

    def __init__(self) -> None:
        self._units: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}

    def samples(self, data: Any, task_id: str | None = None) -> list[Sample]:
        """Every point of ``data`` (a Dataset, or None), in order."""
        if data is None:
            return []
        columns, units, rows = _columns(data)
        shared = self._shared(units)
        stamps = _stamps(data, rows)
        return [
            Sample(stamps[i], {name: col[i] for name, col in columns.items()}, shared, task_id)
            for i in range(rows)
        ]

    def last(self, data: Any, task_id: str | None = None) -> Sample | None:
        found = self.samples(data, task_id)
        return found[-1] if found else None

    def _shared(self, units: dict[str, str]) -> Mapping[str, str]:
        key = tuple(sorted(units.items()))
        got = self._units.get(key)
        if got is None:
            got = self._units[key] = dict(units)
        return got


def _columns(data: Any) -> tuple[dict[str, list[Value]], dict[str, str], int]:
    """Name -> one value per ``uts`` row, the units by name, and the row count."""
    rows = int(data.sizes.get(UTS, 1))
    columns: dict[str, list[Value]] = {}
    units: dict[str, str] = {}
    for name, var in data.data_vars.items():
        _add(columns, units, str(name), var, rows)
    for name, coord in data.coords.items():
        if name != UTS and UTS not in coord.dims:
            _add(columns, units, str(name), coord, rows)  # e.g. trig's abscissa
    return columns, units, rows


def _add(
    columns: dict[str, list[Value]], units: dict[str, str], name: str, var: Any, rows: int
) -> None:
    unit = var.attrs.get("units")
    values = var.values
    if UTS in var.dims:
        axis = var.dims.index(UTS)
        values = values.swapaxes(0, axis).reshape(rows, -1)
        flat = values.shape[1] == 1 and len(var.dims) == 1
        names = [name] if flat else [f"{name}[{j}]" for j in range(values.shape[1])]
        for j, label in enumerate(names):
            columns[label] = [plain(v) for v in values[:, j].tolist()]
    else:  # constant over the samples: repeated in each one
        items = values.reshape(-1).tolist()
        names = [name] if values.ndim == 0 else [f"{name}[{j}]" for j in range(len(items))]
        for label, item in zip(names, items, strict=True):
            columns[label] = [plain(item)] * rows
    if unit:
        for label in names:
            units[label] = str(unit)


def _stamps(data: Any, rows: int) -> list[float]:
    if UTS in data.coords:
        got = [float(v) for v in data.coords[UTS].values.reshape(-1).tolist()]
        if len(got) == rows:
            return got
    now = time.time()
    return [now] * rows
