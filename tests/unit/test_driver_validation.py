"""Value coercion (types, units, limits, options) and task validation at submit."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel

from gantry.drivers.errors import AttrError, TaskInvalid
from gantry.drivers.quantity import parse_units, ureg
from gantry.drivers.types import Attr, Task
from gantry.drivers.units import coerce_param, coerce_value
from gantry.drivers.validation import validate_task

SECONDS = Attr(type=float, rw=True, units="s", minimum=0, maximum=10)


@pytest.mark.parametrize(
    ("val", "expected"),
    [("5 s", 5.0), (5, 5.0), ("5", 5.0), (2.5, 2.5), ("5 ms", 0.005), ("0.1 min", 6.0)],
)
def test_quantity_is_converted_to_the_attr_units(val: Any, expected: float) -> None:
    assert coerce_value("delay", SECONDS, val) == pytest.approx(expected)


def test_pint_quantity_is_accepted() -> None:
    assert coerce_value("delay", SECONDS, ureg().Quantity(250, "ms")) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("val", "words"),
    [
        ("5 kg", ["'delay'", "'5 kg'", "[mass]", "give a value in s"]),
        ("5 parsecs_per_fortnight", ["'delay'", "not known to pint"]),
        ("fast", ["'delay'", "cannot read 'fast'"]),
        ("-1 s", ["'delay'", "below the minimum", "at least 0.0 s"]),
        ("1 min", ["'delay'", "'1 min' (= 60.0 s)", "at most 10.0 s"]),
        ([1], ["'delay'", "not a quantity"]),
        (None, ["'delay' needs a value"]),
        (True, ["'delay'", "not a number"]),
        ("1e999", ["'delay'", "not a finite number"]),
        ("5 m**9**9**9", ["'delay'", "exponent"]),
    ],
)
def test_bad_quantities_name_the_attr_and_the_fix(val: Any, words: list[str]) -> None:
    with pytest.raises(AttrError) as err:
        coerce_value("delay", SECONDS, val)
    for word in words:
        assert word in str(err.value)


def test_offset_units_convert() -> None:
    celsius = Attr(type=float, rw=True, units="degC")
    assert coerce_value("t", celsius, "300 K") == pytest.approx(26.85)
    assert coerce_value("t", celsius, "25 degC") == pytest.approx(25)


def test_int_with_units_must_be_whole() -> None:
    size = Attr(type=int, rw=True, units="B")
    assert coerce_value("size", size, "2 kB") == 2000
    with pytest.raises(AttrError, match="not a whole number"):
        coerce_value("size", size, "1.5 B")


@pytest.mark.parametrize(
    ("kind", "val", "expected"),
    [
        (int, "3", 3),
        (int, 3.0, 3),
        (float, "2.5", 2.5),
        (bool, "yes", True),
        (bool, "off", False),
        (bool, 1, True),
        (str, "up", "up"),
        (str, 7, "7"),
    ],
)
def test_plain_types_coerce(kind: type, val: Any, expected: Any) -> None:
    out = coerce_value("x", Attr(type=kind, rw=True), val)
    assert out == expected and type(out) is kind


@pytest.mark.parametrize(
    ("kind", "val", "message"),
    [
        (int, 3.5, "not a whole number"),
        (int, "three", "give an int"),
        (bool, "maybe", "give true or false"),
        (str, ["a"], "not text"),
        (float, "nan", "not a finite number"),
    ],
)
def test_plain_types_refuse(kind: type, val: Any, message: str) -> None:
    with pytest.raises(AttrError, match=message):
        coerce_value("x", Attr(type=kind, rw=True), val)


def test_options_are_enforced_after_coercion() -> None:
    mode = Attr(type=str, rw=True, options=frozenset({"up", "down"}))
    assert coerce_value("mode", mode, "down") == "down"
    with pytest.raises(AttrError, match="use one of 'down', 'up'"):
        coerce_value("mode", mode, "left")
    gain = Attr(type=int, rw=True, options=frozenset({1, 10, 100}))
    assert coerce_value("gain", gain, "10") == 10


def test_model_typed_attr_validates_with_pydantic() -> None:
    class Profile(BaseModel):
        rate: float
        hold: float

    attr = Attr(type=Profile, rw=True)
    assert coerce_value("profile", attr, {"rate": 1, "hold": 2}) == Profile(rate=1, hold=2)
    with pytest.raises(AttrError, match="not a valid Profile"):
        coerce_value("profile", attr, {"rate": "x"})


def test_coerce_param_checks_the_name_and_rw() -> None:
    attrs = {"delay": SECONDS, "val": Attr(type=float)}
    with pytest.raises(AttrError, match=r"'gain' is not an attr.*writable attrs: delay"):
        coerce_param(attrs, "gain", 1)
    with pytest.raises(AttrError, match="'val' is read-only"):
        coerce_param(attrs, "val", 1)


def test_parse_units() -> None:
    assert str(parse_units("B/s")) == "byte / second"
    with pytest.raises(ValueError, match="not known"):
        parse_units("furlongs_per_blorp")


ATTRS = {
    "delay": SECONDS,
    "mode": Attr(type=str, rw=True, options=frozenset({"up", "down"})),
    "val": Attr(type=float),
}
CAPS = {"count", "random"}


def make(**kw: Any) -> Task:
    base: dict[str, Any] = {
        "component_role": "counter",
        "technique_name": "count",
        "max_duration": 1.0,
        "sampling_interval": 0.1,
        "task_name": "warm-up",
    }
    return Task(**(base | kw))


def test_valid_task_returns_coerced_params() -> None:
    params = validate_task(make(task_params={"delay": "5 ms", "mode": "up"}), ATTRS, CAPS, "c1")
    assert params == {"delay": pytest.approx(0.005), "mode": "up"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"technique_name": "sweep"}, ["technique_name 'sweep'", "use one of: count, random"]),
        ({"sampling_interval": 0}, ["sampling_interval must be", "> 0", "time between samples"]),
        ({"sampling_interval": -1}, ["sampling_interval must be"]),
        ({"sampling_interval": float("nan")}, ["sampling_interval must be"]),
        ({"max_duration": 0}, ["max_duration must be", "how long the task runs"]),
        ({"sampling_interval": 2}, ["longer than max_duration", "at most max_duration"]),
        ({"task_params": {"gain": 1}}, ["'gain' is not an attr", "writable attrs: delay, mode"]),
        ({"task_params": {"val": 1}}, ["'val' is read-only"]),
        ({"task_params": {"delay": "5 kg"}}, ["'delay'", "[mass]"]),
        ({"task_params": {"mode": "left"}}, ["'mode'", "use one of"]),
    ],
)
def test_invalid_task_names_task_field_and_fix(change: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(TaskInvalid) as err:
        validate_task(make(**change), ATTRS, CAPS, "c1")
    msg = str(err.value)
    assert msg.startswith("task 'warm-up' on component c1: ")
    for word in words:
        assert word in msg


def test_unnamed_task_is_named_by_its_technique() -> None:
    with pytest.raises(TaskInvalid, match="task with technique 'count' on component c1"):
        validate_task(make(task_name=None, sampling_interval=0), ATTRS, CAPS, "c1")


def test_task_durations_may_be_strings_with_units() -> None:
    t = make(max_duration="10 min", sampling_interval="500 ms", polling_interval="2 s")
    assert (t.max_duration, t.sampling_interval, t.polling_interval) == (600.0, 0.5, 2.0)
    assert make(task_params=None).task_params == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_duration": "10 kg"}, "'max_duration': '10 kg' has units of [mass]"),
        ({"stop_with_task_name": "warm-up"}, "task 'warm-up' cannot start or stop with itself"),
        ({"sampling_intervall": 1}, "sampling_intervall"),
    ],
)
def test_malformed_tasks_are_refused_by_the_model(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make(**change)
