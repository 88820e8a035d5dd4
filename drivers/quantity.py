"""Numbers with units, parsed with pint: safely, and only when first needed.

A value with units is converted once to a plain number in the units wanted,
so nothing downstream (devices, samples) does pint arithmetic.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from gantry.drivers.errors import AttrError

if TYPE_CHECKING:
    import pint

_MAX_TEXT = 100
_NUMBER = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")
# pint evaluates exponents with Python integers: "m**9**9**9" would hang the
# loop. Allow only small literal exponents, never chained.
_EXPONENT = re.compile(r"\*\*|\^")
_SMALL_EXPONENT = re.compile(r"(?:\*\*|\^)\s*-?\d{1,2}(?!\s*(?:\*\*|\^|\d|\.))")


@functools.cache
def ureg() -> pint.UnitRegistry[Any]:
    """The unit registry, built on first use (about 0.1 s), never at import."""
    import pint  # here, not at import: pint costs the CLI and each driver process 0.4 s

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


def parse_units(units: str) -> pint.Unit:
    """Parse a unit string such as ``"B/s"``; raises ``ValueError`` if unknown."""
    if len(units) > _MAX_TEXT or len(_EXPONENT.findall(units)) != len(
        _SMALL_EXPONENT.findall(units)
    ):
        raise ValueError(f"unit {units!r} is too long or has an exponent that is not small")
    import pint

    try:
        return ureg().Unit(units)
    except (pint.PintError, ValueError, TypeError, SyntaxError) as exc:
        raise ValueError(f"unit {units!r} is not known to pint: {exc}") from exc


def to_magnitude(name: str, units: str, val: object) -> float:
    """``val`` as a number in ``units``; a bare number is taken to be in ``units``.

    Accepts numbers, strings (``"5 ms"``) and pint quantities; raises
    :class:`AttrError` naming ``name``, what was wrong and an example of right.
    """
    if isinstance(val, int | float) and not isinstance(val, bool):
        return float(val)
    import pint

    if isinstance(val, pint.Quantity):
        quantity = val
    elif isinstance(val, str):
        match = _NUMBER.match(val) if len(val) <= _MAX_TEXT else None
        if match is None:
            raise AttrError(
                f"{name!r}: cannot read {val!r} as a number with units; "
                f"give a number in {units}, e.g. '5 {units}'"
            )
        number, unit_text = float(match[1]), match[2]
        if not unit_text:
            return number
        try:
            quantity = ureg().Quantity(number, parse_units(unit_text))
        except ValueError as exc:
            raise AttrError(f"{name!r}: {exc}; give a value in {units}, e.g. '5 {units}'") from exc
    else:
        raise AttrError(
            f"{name!r}: {val!r} is not a quantity; give a number in {units} or a "
            f"string with units, e.g. '5 {units}'"
        )
    try:
        return float(quantity.to(units).magnitude)
    except pint.DimensionalityError as exc:
        have = quantity.dimensionality
        want = ureg().Unit(units).dimensionality
        raise AttrError(
            f"{name!r}: {val!r} has units of {have}, but {name!r} is in {units} ({want}); "
            f"give a value in {units}, e.g. '5 {units}'"
        ) from exc
