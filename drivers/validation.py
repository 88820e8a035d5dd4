"""Validation of a task against one component, done once, at submit."""

from __future__ import annotations

import math
from collections.abc import Set
from typing import Any

from gantry.drivers.errors import AttrError, TaskInvalid
from gantry.drivers.types import Attr, Task
from gantry.drivers.units import coerce_param


def validate_task(
    task: Task, attrs: dict[str, Attr], capabilities: Set[str], component: str
) -> dict[str, Any]:
    """Return ``task.task_params`` coerced (units, types); raise :class:`TaskInvalid`.

    The message names the task, the field at fault and the fix.
    """
    where = f"task {task.label} on component {component}"
    if task.technique_name not in capabilities:
        known = ", ".join(sorted(capabilities)) or "none"
        raise TaskInvalid(
            f"{where}: technique_name {task.technique_name!r} is not supported; use one of: {known}"
        )
    interval, duration = task.sampling_interval, task.max_duration
    if not (math.isfinite(duration) and duration > 0):
        raise TaskInvalid(
            f"{where}: max_duration must be a number of seconds > 0, got {duration}; "
            "give how long the task runs"
        )
    if not (math.isfinite(interval) and interval > 0):
        raise TaskInvalid(
            f"{where}: sampling_interval must be a number of seconds > 0, got {interval}; "
            "give the time between samples"
        )
    if interval > duration:
        raise TaskInvalid(
            f"{where}: sampling_interval ({interval} s) is longer than max_duration "
            f"({duration} s); make sampling_interval at most max_duration"
        )
    params: dict[str, Any] = {}
    for name, val in task.task_params.items():
        try:
            params[name] = coerce_param(attrs, name, val)
        except AttrError as exc:
            raise TaskInvalid(f"{where}: task_params {exc}") from exc
    return params
