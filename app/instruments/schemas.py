"""Wire models of instrument jobs and of the drivers/devices/components/pipelines API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from gantry.drivers.types import Task

#: Names of devices, channels and pipelines (they appear in URLs and file names).
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
SAMPLE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$"
SampleName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=SAMPLE_PATTERN,
        description="The sample's name: letters, digits, '_', '.', ':' and '-'.",
    ),
]
MAX_TASKS = 1000


class SampleSpec(BaseModel):
    """The sample a job measures: its name plus any metadata (kept with the data)."""

    model_config = ConfigDict(extra="allow")

    name: SampleName


class InstrumentPayload(BaseModel):
    """An instrument job (tomato's payload): a sample and a method of tasks."""

    model_config = ConfigDict(extra="forbid")

    sample: SampleSpec
    method: Annotated[list[Task], Field(min_length=1, max_length=MAX_TASKS)]


# --- the API -------------------------------------------------------------------


class DriverFailure(BaseModel):
    reason: str = Field(description="Why the process ended: signal, error, hang or memory.")
    at: datetime


class DriverProcessInfo(BaseModel):
    """A driver's own process, as the server supervises it."""

    pid: int | None = Field(description="null while the process is being (re)started.")
    restarts: int = Field(description="How often the process was restarted.")
    last_failure: DriverFailure | None
    log: str | None = Field(description="The process's log file (null: the server's stderr).")


class DriverInfo(BaseModel):
    name: str
    target: str
    loaded: bool
    running: bool
    error: str | None
    version: str | None
    components: list[str]
    process: DriverProcessInfo | None = Field(
        default=None, description="The driver's process; null if it runs inside the server."
    )


class DeviceInfo(BaseModel):
    name: str
    driver: str
    address: str
    channels: list[str]
    pollrate: float | None


class RoleRef(BaseModel):
    pipeline: str
    role: str


class ComponentInfo(BaseModel):
    device: str
    channel: str
    driver: str
    address: str
    available: bool
    error: str | None
    capabilities: list[str]
    roles: list[RoleRef]
    job_id: int | None = Field(description="The job whose pipeline holds this component now.")


class AttrInfo(BaseModel):
    type: str
    rw: bool
    status: bool
    units: str | None
    minimum: float | None
    maximum: float | None
    options: list[Any] | None


class ComponentStatus(ComponentInfo):
    status: dict[str, Any] = Field(description="Status attrs plus running, task and queued.")
    constants: dict[str, Any]
    attrs: dict[str, AttrInfo]
    last_data: SampleOut | None


class SampleOut(BaseModel):
    uts: float
    values: dict[str, Any]
    units: dict[str, str]


class AttrValue(BaseModel):
    device: str
    channel: str
    attr: str
    value: Any
    units: str | None = None


class AttrWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Any = Field(description="A number, text, or a string with units ('5 ms').")


class PipelineComponent(BaseModel):
    role: str
    device: str
    channel: str
    available: bool


class PipelineInfo(BaseModel):
    name: str
    components: list[PipelineComponent]
    sample: str | None
    ready: bool
    job_id: int | None = Field(description="The job running on it (or reserved for it).")
    available: bool = Field(description="All its components are usable.")
    updated_at: datetime | None


class SampleLoad(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample: SampleName


class ReadyWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ready: bool = True


class RolePage(BaseModel):
    role: str
    offset: int = Field(description="Line (sample) offset where `samples` start.")
    next_offset: int = Field(description="Pass as `offset` to read on.")
    samples: list[dict[str, Any]]


class DataPage(BaseModel):
    job_id: int
    attempt: int
    state: str
    complete: bool = Field(description="The job ended and every role was read to its end.")
    roles: list[RolePage]


ComponentStatus.model_rebuild()
