"""Checks of an instrument job at submit, so a bad method never waits in the queue.

Every role must be in some pipeline and one pipeline must have them all;
each task's technique must be one its component can run and each param a
writable attr with a valid value (the driver's ``task_validate`` says, with
units, limits and options); durations must make sense; task names must be
unique and ``start_with``/``stop_with`` must name tasks of the method without
waiting in a circle. A problem is an :class:`InvalidPayload` naming the task
and the field.
"""

from __future__ import annotations

import math

from gantry.backends.base import InvalidPayload
from gantry.drivers.interface_2_0 import Task
from gantry.instruments.devices import PipelineConfig
from gantry.instruments.host import DriverHost, DriverTimeout, UnknownComponent
from gantry.instruments.schemas import InstrumentPayload

Loc = tuple[str | int, ...]


async def validate_method(
    payload: InstrumentPayload, host: DriverHost, pipelines: dict[str, PipelineConfig]
) -> None:
    """Raise :class:`InvalidPayload` naming the first problem (its ``field`` within the payload)."""
    tasks = payload.method
    at: Loc = ("method",)
    known = sorted({role for p in pipelines.values() for role in p.roles})
    for i, task in enumerate(tasks):
        if task.component_role not in known:
            raise InvalidPayload(
                (*at, i, "component_role"),
                f"task {i} ({task.label}): component_role {task.component_role!r} is in no "
                f"pipeline; roles: {', '.join(known) or 'none (the server has no devices file)'}",
            )
        _check_times(task, i, at)
    roles = {t.component_role for t in tasks}
    candidates = [p for _, p in sorted(pipelines.items()) if roles <= set(p.roles)]
    if not candidates:
        shown = "; ".join(f"{p.name}: {', '.join(p.roles)}" for p in pipelines.values())
        raise InvalidPayload(
            at, f"no pipeline has all the roles {', '.join(sorted(roles))} (pipelines: {shown})"
        )
    _check_names(tasks, at)
    first: InvalidPayload | None = None
    for pipeline in candidates:
        try:
            await _check_on(pipeline, tasks, host, at)
            return
        except InvalidPayload as exc:
            first = first or exc
    assert first is not None
    raise first


def _check_times(task: Task, i: int, at: Loc) -> None:
    where = f"task {i} ({task.label})"
    duration, interval = task.max_duration, task.sampling_interval
    if not (math.isfinite(duration) and duration > 0):
        raise InvalidPayload(
            (*at, i, "max_duration"),
            f"{where}: max_duration must be a number of seconds > 0, got {duration}",
        )
    if not (math.isfinite(interval) and interval > 0):
        raise InvalidPayload(
            (*at, i, "sampling_interval"),
            f"{where}: sampling_interval must be a number of seconds > 0, got {interval}",
        )
    if interval > duration:
        raise InvalidPayload(
            (*at, i, "sampling_interval"),
            f"{where}: sampling_interval ({interval:g} s) is longer than max_duration "
            f"({duration:g} s): make it at most max_duration",
        )
    polling = task.polling_interval
    if polling is not None and not (math.isfinite(polling) and 0 < polling <= 3600):
        raise InvalidPayload(
            (*at, i, "polling_interval"),
            f"{where}: polling_interval must be between 0 and 3600 s, got {polling}",
        )


def _check_names(tasks: list[Task], at: Loc) -> None:
    index: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if task.task_name is None:
            continue
        if task.task_name in index:
            raise InvalidPayload(
                (*at, i, "task_name"),
                f"task {i}: task_name {task.task_name!r} is also task {index[task.task_name]}'s: "
                "give each task its own name",
            )
        index[task.task_name] = i
    for i, task in enumerate(tasks):
        for field in ("start_with_task_name", "stop_with_task_name"):
            name = getattr(task, field)
            if name is not None and name not in index:
                raise InvalidPayload(
                    (*at, i, field),
                    f"task {i} ({task.label}): {field} {name!r} names no task of this method; "
                    f"task names: {', '.join(index) or 'none'}",
                )
    # A task starts after the previous task of its role and after its
    # start_with task started: a cycle in that order would wait forever.
    after: dict[int, set[int]] = {i: set() for i in range(len(tasks))}
    previous: dict[str, int] = {}
    for i, task in enumerate(tasks):
        if task.component_role in previous:
            after[i].add(previous[task.component_role])
        previous[task.component_role] = i
        if task.start_with_task_name is not None:
            after[i].add(index[task.start_with_task_name])
    # Kahn's algorithm: whatever cannot be ordered waits in a circle.
    waiting = {i: set(deps) for i, deps in after.items()}
    ready = [i for i, deps in waiting.items() if not deps]
    while ready:
        done = ready.pop()
        del waiting[done]
        for i, deps in waiting.items():
            if done in deps:
                deps.discard(done)
                if not deps:
                    ready.append(i)
    stuck = sorted(i for i in waiting if tasks[i].start_with_task_name is not None)
    if stuck:
        i = stuck[0]
        raise InvalidPayload(
            (*at, i, "start_with_task_name"),
            f"task {i} ({tasks[i].label}) would wait for itself: its start_with_task_name "
            "makes a circle with the order of the tasks of each role",
        )


async def _check_on(pipeline: PipelineConfig, tasks: list[Task], host: DriverHost, at: Loc) -> None:
    roles = pipeline.roles
    for i, task in enumerate(tasks):
        ref = roles[task.component_role]
        where = f"task {i} ({task.label})"
        try:
            comp = host.component(ref.device, ref.channel)
            caps = await comp.call("cmp_capabilities", seconds=5)
            if caps.success and task.technique_name not in caps.data:
                raise InvalidPayload(
                    (*at, i, "technique_name"),
                    f"{where}: technique_name {task.technique_name!r} is not supported by "
                    f"component {comp.label} (role {ref.role!r}); use one of: "
                    f"{', '.join(sorted(caps.data)) or 'none'}",
                )
            reply = await comp.call("task_validate", task, seconds=5)
        except (UnknownComponent, DriverTimeout) as exc:
            raise InvalidPayload((*at, i, "component_role"), f"{where}: {exc}") from None
        if not reply.success:
            # The driver's message names the task, the component and the fix.
            raise InvalidPayload((*at, i, _field_of(reply.msg)), f"task {i}: {reply.msg}")


def _field_of(message: str) -> str:
    for field in ("technique_name", "task_params", "sampling_interval", "max_duration"):
        if f": {field}" in message:
            return field
    return "task_params"
