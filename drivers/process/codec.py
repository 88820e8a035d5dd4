"""What the contract's calls carry, as plain JSON and back.

A Reply's ``data`` has a shape per call: a set of capabilities, Attrs, a
TaskInfo, Samples. Each call's shape is encoded on the driver's side and
rebuilt on the server's into the very objects an in-process driver returns,
so nothing above the proxy can tell the difference. Anything else (attr
values, constants, status) goes as plain values; a set and a ``pint``
quantity carry a tag (``{"$set": [...]}``, ``{"$quantity": [m, "unit"]}``)
so they come back as themselves, with their units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from gantry.drivers.quantity import ureg
from gantry.drivers.types import Attr, Sample, TaskInfo

#: Every call a driver process serves: the contract, nothing else.
CALLS = frozenset(
    {
        "cmp_register",
        "cmp_teardown",
        "cmp_reset",
        "cmp_get_attr",
        "cmp_set_attr",
        "cmp_attrs",
        "cmp_capabilities",
        "cmp_constants",
        "cmp_status",
        "cmp_last_data",
        "cmp_measure",
        "task_validate",
        "task_submit",
        "task_status",
        "task_stop",
        "task_data",
        "status",
        "reset",
    }
)
#: Attr types by the name they travel under; another type checks nothing on the server.
TYPES: dict[str, type] = {t.__name__: t for t in (float, int, str, bool, list, dict, tuple)}


def plain(value: Any) -> Any:
    """Any value as JSON data; sets and quantities tagged, numpy as Python numbers."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return {"$set": [plain(v) for v in value]}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if hasattr(value, "magnitude") and hasattr(value, "units"):
        return {"$quantity": [plain(value.magnitude), str(value.units)]}
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays
    if callable(tolist):
        return plain(tolist())
    return str(value)


def unplain(value: Any) -> Any:
    """The inverse of :func:`plain`."""
    if isinstance(value, list):
        return [unplain(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        if isinstance(got := value.get("$set"), list):
            return {_hashable(unplain(v)) for v in got}
        if isinstance(got := value.get("$quantity"), list) and len(got) == 2:
            try:
                return ureg().Quantity(got[0], str(got[1]))
            except Exception:  # units this pint does not know: keep them as text
                return f"{got[0]} {got[1]}"
    return {k: unplain(v) for k, v in value.items()}


def _hashable(value: Any) -> Any:
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value


# -- Reply data by call ----------------------------------------------------------


def encode_samples(samples: Sequence[Sample]) -> dict[str, Any]:
    """Samples with each distinct units map sent once (samples of a task share one)."""
    index: dict[int, int] = {}
    units: list[dict[str, str]] = []
    rows = []
    for s in samples:
        k = index.get(id(s.units))
        if k is None:
            k = index[id(s.units)] = len(units)
            units.append(dict(s.units))
        rows.append((s.uts, s.values, k, s.task_id))
    return {"units": units, "rows": rows}


def decode_samples(data: Mapping[str, Any]) -> list[Sample]:
    units = [dict(u) for u in data["units"]]
    return [Sample(uts, values, units[k], task_id) for uts, values, k, task_id in data["rows"]]


def _encode_sample(sample: Sample | None) -> Any:
    return None if sample is None else encode_samples([sample])


def _decode_sample(data: Any) -> Sample | None:
    return None if data is None else decode_samples(data)[0]


def _encode_attrs(attrs: Mapping[str, Attr]) -> dict[str, Any]:
    return {name: plain(attr.model_dump(mode="json")) for name, attr in attrs.items()}


def _decode_attrs(data: Mapping[str, Any]) -> dict[str, Attr]:
    out = {}
    for name, fields in data.items():
        options = fields.get("options")
        out[name] = Attr.model_validate(
            fields
            | {
                "type": TYPES.get(fields.get("type"), object),
                "options": None if options is None else frozenset(unplain(options)),
            }
        )
    return out


def _encode_info(info: TaskInfo | None) -> Any:
    return None if info is None else info.model_dump(mode="json")


def _decode_info(data: Any) -> TaskInfo | None:
    return None if data is None else TaskInfo.model_validate(data)


def _encode_set(caps: Any) -> Any:
    return None if caps is None else [str(c) for c in caps]


def _decode_set(data: Any) -> Any:
    return None if data is None else set(data)


_Codec = tuple[Callable[[Any], Any], Callable[[Any], Any]]
_BY_CALL: dict[str, _Codec] = {
    "task_data": (encode_samples, decode_samples),
    "cmp_last_data": (_encode_sample, _decode_sample),
    "cmp_measure": (_encode_sample, _decode_sample),
    "cmp_attrs": (_encode_attrs, _decode_attrs),
    "cmp_register": (_encode_set, _decode_set),
    "cmp_capabilities": (_encode_set, _decode_set),
    "task_submit": (_encode_info, _decode_info),
    "task_status": (_encode_info, _decode_info),
    "task_stop": (_encode_info, _decode_info),
}
_PLAIN: _Codec = (plain, unplain)


def encode_data(call: str, data: Any) -> Any:
    if data is None:
        return None
    return _BY_CALL.get(call, _PLAIN)[0](data)


def decode_data(call: str, data: Any) -> Any:
    if data is None:
        return None
    return _BY_CALL.get(call, _PLAIN)[1](data)


def encode_info(info: TaskInfo) -> dict[str, Any]:
    return info.model_dump(mode="json")


def decode_info(data: Mapping[str, Any]) -> TaskInfo:
    return TaskInfo.model_validate(data)
