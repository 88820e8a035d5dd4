"""What a job is, as its submitter asked for it: one read-only spec.

Every other shape of a job derives its fields from :class:`JobSpec`: the
:class:`NewJob` the service builds is a spec plus what validation found out,
a job row holds the spec's columns, :class:`~gantry.jobs.active.ActiveJob`
keeps the spec it came from (not a copy of its fields), and the backend's
``JobSubmission`` is built from it once per attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

#: Seconds before a failed job's first retry; each later retry waits twice as long.
DEFAULT_RETRY_DELAY = 10.0


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def frozen_spec(cls: type[T]) -> type[T]:
    """A slots dataclass that type checkers hold frozen (mypy strict rejects any assignment).

    Not frozen at run time: a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__``, 1.2 us more per job on the submit path
    (17 fields), where every job of a batch makes one.
    """
    return dataclass(slots=True)(cls)


@frozen_spec
class JobSpec:
    """The fields a submitter gives; never changes while the job lives.

    The collections are shared between the jobs of a batch: never mutate them.
    """

    name: str
    backend: str
    kind: str = "command"
    #: the shell script of a command job
    spec: str | None = None
    #: the sample and method of an instrument job, parsed once at submit
    payload: dict[str, Any] | None = None
    #: the backend's options with its defaults filled in, validated once
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    priority: int = 0
    max_retries: int = 0
    retry_delay: float = DEFAULT_RETRY_DELAY
    #: an array job's tasks in Slurm's syntax (``0-99%10``), checked at submit
    array: str | None = None
    #: the name of the API token that submitted it (None: a server without tokens)
    submitted_by: str | None = None


#: The columns of a job row that its spec gives.
SPEC_FIELDS = tuple(f.name for f in fields(JobSpec))


@frozen_spec
class NewJob(JobSpec):
    """A validated spec, ready to insert.

    ``after_ids`` are earlier jobs it runs after (sorted, distinct);
    ``after_new`` index jobs of the same batch, filled in once the batch's
    graph is resolved.
    """

    warnings: list[str] = field(default_factory=list)
    after_ids: list[int] = field(default_factory=list)
    after_new: list[int] = field(default_factory=list)


def spec_of_row(row: Any) -> JobSpec:
    """The spec a stored job row was made from."""
    return JobSpec(
        name=row["name"],
        backend=row["backend"],
        kind=row.get("kind") or "command",
        spec=row["spec"],
        payload=row.get("payload"),
        options=row["options"] or {},
        env=row["env"] or {},
        working_dir=row["working_dir"],
        inputs=row.get("inputs") or [],
        outputs=row.get("outputs") or [],
        tags=row.get("tags") or [],
        priority=row["priority"],
        max_retries=row.get("max_retries", 0),
        retry_delay=row.get("retry_delay", DEFAULT_RETRY_DELAY),
        array=row.get("array"),
        submitted_by=row.get("submitted_by"),
    )
