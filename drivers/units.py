"""Coercion of attribute values: types, units (pint), limits, options.

Used at validation time only (``task_validate``, ``cmp_set_attr``): a value
with units is converted once to a plain number in the attribute's units, so a
device and its samples never do pint arithmetic on the hot path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from gantry.drivers.errors import AttrError
from gantry.drivers.quantity import to_magnitude
from gantry.drivers.types import Attr

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _as_type(name: str, kind: type, val: object) -> Any:
    """Coerce a value without units to ``kind`` (float, int, bool, str or a model)."""
    if kind is bool:
        if isinstance(val, bool):
            return val
        text = str(val).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise AttrError(f"{name!r}: {val!r} is not a boolean; give true or false")
    if kind is int or kind is float:
        wanted = "a float" if kind is float else "an int"
        if isinstance(val, bool) or not isinstance(val, int | float | str):
            raise AttrError(f"{name!r}: {val!r} is not a number; give {wanted}")
        try:
            number = float(val)
        except ValueError:
            raise AttrError(f"{name!r}: {val!r} is not a number; give {wanted}") from None
        if not math.isfinite(number):
            raise AttrError(f"{name!r}: {val!r} is not a finite number")
        if kind is float:
            return number
        if not number.is_integer():
            raise AttrError(f"{name!r}: {val!r} is not a whole number; give an int")
        return int(number)
    if isinstance(val, kind):
        return val
    if kind is str:
        if isinstance(val, int | float) and not isinstance(val, bool):
            return str(val)
        raise AttrError(f"{name!r}: {val!r} is not text; give a string")
    if issubclass(kind, BaseModel):
        try:
            return kind.model_validate(val)
        except ValidationError as exc:
            raise AttrError(f"{name!r}: {val!r} is not a valid {kind.__name__}: {exc}") from exc
    factory: Callable[[object], Any] = kind
    try:
        return factory(val)
    except (TypeError, ValueError) as exc:
        raise AttrError(f"{name!r}: cannot make a {kind.__name__} of {val!r}: {exc}") from exc


def coerce_value(name: str, attr: Attr, val: object) -> Any:
    """Check ``val`` for attribute ``name`` and return it in its canonical form.

    Numbers with ``attr.units`` come back as plain numbers in those units
    (``"5 ms"`` for an attribute in ``s`` gives ``0.005``). Raises
    :class:`AttrError` naming the attribute and the fix.
    """
    if val is None:
        raise AttrError(f"{name!r} needs a value, got None")
    raw = val
    if attr.units is not None and attr.type in (int, float) and not isinstance(val, bool):
        raw = to_magnitude(name, attr.units, val)
    out: Any = _as_type(name, attr.type, raw)
    if attr.options is not None and out not in attr.options:
        allowed = ", ".join(repr(o) for o in sorted(attr.options, key=str))
        raise AttrError(f"{name!r}: {out!r} is not allowed; use one of {allowed}")
    units = f" {attr.units}" if attr.units else ""
    same = type(val) is type(out) and val == out
    shown = f"{out}{units}" if same else f"{val!r} (= {out}{units})"
    if attr.minimum is not None and out < attr.minimum:
        raise AttrError(
            f"{name!r}: {shown} is below the minimum; give at least {attr.minimum}{units}"
        )
    if attr.maximum is not None and out > attr.maximum:
        raise AttrError(
            f"{name!r}: {shown} is above the maximum; give at most {attr.maximum}{units}"
        )
    return out


def coerce_param(attrs: dict[str, Attr], name: str, val: object) -> Any:
    """Like :func:`coerce_value`, first checking ``name`` is a writable attribute."""
    attr = attrs.get(name)
    if attr is None:
        writable = ", ".join(sorted(n for n, a in attrs.items() if a.rw)) or "none"
        raise AttrError(f"{name!r} is not an attr of this component; writable attrs: {writable}")
    if not attr.rw:
        raise AttrError(f"{name!r} is read-only; it cannot be set, only read")
    return coerce_value(name, attr, val)
