"""What goes over the wire: request and response models of the REST API.

Validation messages name the field and say how to fix it: they are what a
user sees in a 422 answer and in the CLI.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from gantry.instruments.schemas import SAMPLE_PATTERN, InstrumentPayload
from gantry.jobs.spec import DEFAULT_RETRY_DELAY

NAME_RULE = "a letter or underscore, then letters, digits, dots or underscores (gwf's rule)"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9._]*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_SPEC = 1024 * 1024
MAX_PATH = 4096


def _path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("paths may not contain NUL bytes")
    if not value.strip():
        raise ValueError("paths may not be empty")
    return value


#: What a value that fails a pattern should look like, for 422 messages
#: (pydantic's own names only the regular expression).
PATTERN_RULES = {
    _NAME.pattern: NAME_RULE,
    _TAG.pattern: "a letter, digit or underscore, then letters, digits, '_', '.', ':' or '-'",
    SAMPLE_PATTERN: "a letter, digit or underscore, then letters, digits, '_', '.', ':' or '-'",
}

# Checked by pattern (in pydantic-core), not by a Python validator: a batch
# checks 5,000 names.
JobName = Annotated[str, Field(min_length=1, max_length=200, pattern=_NAME.pattern)]
EnvName = Annotated[str, Field(max_length=200, json_schema_extra={"pattern": _ENV_NAME.pattern})]
OptionName = Annotated[str, Field(max_length=64, json_schema_extra={"pattern": _ENV_NAME.pattern})]
PathText = Annotated[str, Field(min_length=1, max_length=MAX_PATH), AfterValidator(_path)]
Tag = Annotated[str, Field(min_length=1, max_length=64, pattern=_TAG.pattern)]


class JobCreate(BaseModel):
    """A command job (``spec``: a shell script for a backend to run) or an
    instrument job (``payload``: a sample and a method for the instruments)."""

    model_config = ConfigDict(extra="forbid")

    name: JobName = "job"
    backend: str | None = Field(
        None, max_length=64, description="Backend to run on; default: the server's default."
    )
    spec: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_SPEC,
        description="The shell script of a command job; give this or `payload`.",
    )
    payload: InstrumentPayload | None = Field(
        None,
        description="The sample and method of an instrument job (runs on the `instrument` "
        "backend); give this or `spec`.",
    )
    options: dict[OptionName, Any] = Field(
        default_factory=dict,
        description="Backend options (cores, memory, walltime, ...); unknown ones are dropped "
        "with a warning.",
    )
    depends_on: list[int | JobName] = Field(
        default_factory=list,
        max_length=10_000,
        description="Job ids this job runs after (afterok); in a batch also names of jobs of "
        "the same batch.",
    )
    inputs: list[PathText] = Field(default_factory=list, max_length=10_000)
    outputs: list[PathText] = Field(default_factory=list, max_length=10_000)
    working_dir: PathText | None = Field(
        None, description="Absolute directory the job starts in; default: <data_dir>/work."
    )
    env: dict[EnvName, str] = Field(
        default_factory=dict, description="Extra environment variables."
    )
    tags: list[Tag] = Field(default_factory=list, max_length=32)
    priority: int = Field(0, ge=-1000, le=1000, description="Higher runs first.")
    max_retries: int = Field(0, ge=0, le=20, description="Retries after a failed attempt.")
    retry_delay: float = Field(
        DEFAULT_RETRY_DELAY,
        ge=0,
        le=86_400,
        description="Seconds before the first retry; doubles each time.",
    )
    array: str | None = Field(
        None,
        max_length=10_000,
        description="Make an array job: its task indices in Slurm's --array syntax "
        "(`0-999`, `1,3,5-9`, `0-999:2`, `0-99%10` for at most 10 at once). Each task runs "
        "`spec` with its index in GANTRY_ARRAY_INDEX.",
    )

    @field_validator("spec")
    @classmethod
    def _spec_not_blank(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip():
            raise ValueError("spec is empty: give the shell script the job should run")
        if "\x00" in value:
            raise ValueError("spec contains a NUL byte: give a plain-text shell script")
        return value

    @field_validator("working_dir")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"working_dir {value!r} is relative: give an absolute path")
        return value

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 1000:
            raise ValueError("env has more than 1000 variables")
        for name, text in value.items():
            if not _ENV_NAME.match(name):
                raise ValueError(
                    f"env variable name {name!r} is invalid: use letters, digits and underscores"
                )
            if "\x00" in text or len(text) > 128 * 1024:
                raise ValueError(f"env variable {name} has a NUL byte or is over 128 KiB")
        return value

    @field_validator("options")
    @classmethod
    def _options_size(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > 100:
            raise ValueError("options has more than 100 entries")
        for key in value:
            if not _ENV_NAME.match(key) or len(key) > 64:
                raise ValueError(
                    f"option name {key!r} is invalid: use letters, digits, underscores"
                )
        return value


class JobBatchCreate(BaseModel):
    """Many jobs in one transaction (gwf's workflow case): all are stored or none."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[JobCreate] = Field(min_length=1)


State = Literal["queued", "submitted", "running", "cancelling", "completed", "failed", "cancelled"]


class JobPublic(BaseModel):
    id: int
    name: str
    kind: str
    backend: str
    state: State
    reason: str | None
    priority: int
    tags: list[str]
    options: dict[str, Any]
    inputs: list[str]
    outputs: list[str]
    working_dir: str | None
    exit_code: int | None
    attempt: int
    max_retries: int
    backend_ref: str | None
    warnings: list[str]
    array: str | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


class JobDetail(JobPublic):
    spec: str | None
    payload: dict[str, Any] | None = None
    env: dict[str, str]
    depends_on: list[int]
    submitted_by: str | None = Field(
        default=None, description="The name of the API token that submitted it (null: no tokens)."
    )


class JobAccounting(BaseModel):
    """What an ended job cost, as its backend measured it (null: not measured)."""

    cpu_user_seconds: float | None = Field(description="CPU time in user mode, whole job.")
    cpu_system_seconds: float | None = Field(description="CPU time in kernel mode, whole job.")
    max_rss_bytes: int | None = Field(description="Peak resident memory.")
    wall_seconds: float | None = Field(description="From start to end.")
    driver_seconds: float | None = Field(description="Instrument jobs: time the driver worked.")
    samples: int | None = Field(description="Instrument jobs: data points recorded.")


class ArrayCounts(BaseModel):
    """An array job's tasks by state; ``pending``: not started yet."""

    count: int
    limit: int | None = Field(description="At most this many tasks at once (%K).")
    by_state: dict[Literal["pending", "running", "completed", "failed", "cancelled"], int]


class JobShown(JobDetail):
    """One job as ``GET /jobs/{id}`` shows it, with its accounting once it ended."""

    accounting: JobAccounting | None = None
    tasks: ArrayCounts | None = Field(None, description="Array jobs: their tasks' counts.")


class TaskPublic(BaseModel):
    """One task of an array job that started."""

    index: int
    state: Literal["running", "completed", "failed", "cancelled"]
    exit_code: int | None
    reason: str | None
    started_at: datetime | None
    ended_at: datetime | None
    accounting: JobAccounting | None


class TasksPage(BaseModel):
    items: list[TaskPublic]
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )


class TaskCancelResult(BaseModel):
    id: int
    index: int
    state: State


class StateStats(BaseModel):
    jobs: int
    measured: int = Field(description="Jobs whose backend measured their CPU time.")
    cpu_hours: float = Field(description="User plus system CPU time of the measured jobs.")
    peak_memory_bytes: int | None = Field(description="The largest peak of any one job.")
    wall_hours: float


class JobStats(StateStats):
    """What the jobs (with ``tag``) cost: totals, and the same by state."""

    tag: str | None
    by_state: dict[State, StateStats]


class JobSubmitted(JobDetail):
    """The stored job, with warnings about what was dropped from it."""


class JobRef(BaseModel):
    """A job a batch made: enough to follow it; ``GET /jobs/{id}`` has the rest."""

    id: int
    name: str
    kind: str
    backend: str
    state: State
    warnings: list[str]


class JobBatchSubmitted(BaseModel):
    # References, not whole jobs: answering 5,000 full jobs cost a batch as
    # much as storing them.
    jobs: list[JobRef]
    warnings: list[str]


class JobsPage(BaseModel):
    items: list[JobPublic]
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )


class CancelResult(BaseModel):
    id: int
    state: State


class EventPublic(BaseModel):
    id: int
    job_id: int
    at: datetime
    from_state: State | None
    to_state: State
    message: str | None


class EventsPage(BaseModel):
    items: list[EventPublic]


class LogChunk(BaseModel):
    job_id: int
    stream: Literal["stdout", "stderr"]
    offset: int = Field(description="Byte offset where `text` starts.")
    next_offset: int = Field(description="Pass as `offset` to read on.")
    size: int = Field(description="Size of the log file now.")
    text: str
    complete: bool = Field(description="True once the job has ended and all of it was read.")


class BackendInfo(BaseModel):
    name: str
    loaded: bool
    running: bool
    healthy: bool | None
    message: str
    option_defaults: dict[str, Any]
    supports_dependencies: bool
    entry_point: str


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    active_jobs: int


class ErrorBody(BaseModel):
    detail: str
