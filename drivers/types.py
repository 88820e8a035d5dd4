"""Plain data of the driver contract: attributes, tasks, replies, samples.

Shared by every interface version; nothing here talks to hardware.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, NamedTuple, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from gantry.drivers.quantity import to_magnitude

#: A component is addressed like in tomato: ``(address, channel)``.
Key: TypeAlias = tuple[str, str]
#: What one named value of a sample may be.
Value: TypeAlias = float | int | str | bool | None
# ``type`` is also a field name of Attr; this alias keeps the annotation unambiguous.
_Type: TypeAlias = type


class Attr(BaseModel):
    """One attribute of a component: a setting (``rw``) or a reading.

    ``minimum``/``maximum`` are in ``units`` (plain numbers, so a check costs a
    comparison). ``options``, if given, lists every allowed value. ``status``
    attributes are reported by ``cmp_status``.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    type: _Type
    rw: bool = False
    status: bool = False
    units: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    options: frozenset[Any] | None = None

    @field_serializer("type")
    def _type_name(self, kind: _Type) -> str:
        # So ``model_dump(mode="json")`` works for the API: "float", not a class.
        return kind.__name__


class Task(BaseModel):
    """One step of a method for one component role (tomato's ``Task``, payload 2.1).

    Durations are seconds; a string with units (``"10 min"``) is converted.
    Values are checked against the component at submit by ``task_validate``
    (so the error names the task, the field and the fix), not here.
    """

    model_config = ConfigDict(extra="forbid")

    component_role: str
    technique_name: str
    task_params: dict[str, Any] = Field(default_factory=dict)
    max_duration: float
    sampling_interval: float
    #: how often the server drains this task's data; None = the server's default
    polling_interval: float | None = None
    task_name: str | None = None
    start_with_task_name: str | None = None
    stop_with_task_name: str | None = None

    @field_validator("max_duration", "sampling_interval", "polling_interval", mode="before")
    @classmethod
    def _seconds(cls, val: object, info: ValidationInfo) -> object:
        if isinstance(val, str):
            return to_magnitude(str(info.field_name), "s", val)
        return val

    @field_validator("task_params", mode="before")
    @classmethod
    def _no_params(cls, val: object) -> object:
        return {} if val is None else val

    @model_validator(mode="after")
    def _not_self_triggered(self) -> Task:
        name = self.task_name
        if name is not None and name in (self.start_with_task_name, self.stop_with_task_name):
            raise ValueError(f"task {name!r} cannot start or stop with itself")
        return self

    @property
    def label(self) -> str:
        """How messages name this task: its name, else its technique."""
        if self.task_name:
            return repr(self.task_name)
        return f"with technique {self.technique_name!r}"


class Reply(BaseModel):
    """What every ``ModelInterface`` call returns; ``msg`` is for people."""

    success: bool
    msg: str
    data: Any = None


class Sample(NamedTuple):
    """One reading: a wall-clock timestamp and named values.

    ``units`` maps value names to unit strings; it is one dict shared by all
    samples of a task (a NamedTuple and a shared dict keep the per-sample
    cost to an allocation: 5,000 samples/s must stay cheap).
    """

    uts: float
    values: dict[str, Value]
    units: Mapping[str, str]
    task_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "uts": self.uts,
            "values": dict(self.values),
            "units": dict(self.units),
            "task_id": self.task_id,
        }


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def is_final(self) -> bool:
        return self in (TaskState.COMPLETED, TaskState.FAILED, TaskState.STOPPED)


class TaskInfo(BaseModel):
    """A snapshot of one submitted task, as ``task_submit/status/stop`` report it."""

    id: str
    address: str
    channel: str
    task: Task
    state: TaskState
    msg: str = ""
    submitted_at: float
    started_at: float | None = None
    ended_at: float | None = None
    samples: int = 0
    #: sampling ticks skipped because the component fell a whole interval behind
    missed: int = 0
