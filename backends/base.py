"""The backend contract: the async form of gwf's ``Backend``.

A backend runs *command jobs* (shell scripts) somewhere. gantry's engine talks
to it only through this module, and a backend imports nothing from ``app``:
everything it needs arrives in a :class:`BackendContext`.

Life of a backend inside the server::

    backend = BackendClass(context)          # cheap; no I/O
    await tg.start(backend.run)              # long-lived work (pollers, pools)
    ref = await backend.submit(job, deps)    # returns at once
    backend.context.report(ref, StatusReport(...))   # whenever a job moves
    await backend.cancel(ref)                # idempotent
    await backend.status([ref, ...])         # bulk, for reconciliation
    await backend.close()
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import anyio
from anyio.abc import TaskStatus

LogStream = Literal["stdout", "stderr"]


class BackendStatus(enum.StrEnum):
    """What a backend knows of one job (gwf's ``TargetStatus``, widened)."""

    UNKNOWN = "unknown"
    SUBMITTED = "submitted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({BackendStatus.COMPLETED, BackendStatus.FAILED, BackendStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class Accounting:
    """What one ended job cost, as far as its backend knows (None: not known).

    Command jobs: CPU seconds in user and system mode of the job's whole
    process tree, its peak resident memory in bytes, and its wall time.
    Instrument jobs: the seconds their driver worked and the samples taken.
    """

    cpu_user: float | None = None
    cpu_system: float | None = None
    max_rss: int | None = None
    wall: float | None = None
    driver_time: float | None = None
    samples: int | None = None


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One observation of a job by its backend.

    ``reason`` is a sentence for people ("walltime 00:00:01 exceeded");
    ``raw`` is the backend's own word for the state (a Slurm state, say), kept
    so an UNKNOWN mapping can still be explained. A final report may carry
    the job's :class:`Accounting`; a backend that measures nothing leaves it None.
    """

    status: BackendStatus
    exit_code: int | None = None
    reason: str | None = None
    raw: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    accounting: Accounting | None = None
    #: a report about one task of an array job (its index); None: about the job
    task: int | None = None


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """The tasks of an array job (Slurm's ``--array`` syntax, parsed and checked).

    ``ranges`` are ``(first, last, step)`` with ``last`` included, as given:
    never expanded into a list. ``limit``: at most this many tasks at once.
    """

    text: str
    ranges: tuple[tuple[int, int, int], ...]
    limit: int | None
    count: int

    def indices(self) -> Iterator[int]:
        """Every index once, in ascending order."""
        if len(self.ranges) == 1:  # the common case: no set needed
            first, last, step = self.ranges[0]
            yield from range(first, last + 1, step)
            return
        yield from sorted({i for a, b, s in self.ranges for i in range(a, b + 1, s)})

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and any(
            a <= index <= b and (index - a) % s == 0 for a, b, s in self.ranges
        )


def task_log_path(path: Path, index: int) -> Path:
    """Where task ``index`` of an array writes the log the array's ``path`` names:
    ``12.stdout`` -> ``12_7.stdout``."""
    return path.with_name(f"{path.stem}_{int(index)}{path.suffix}")


@dataclass(frozen=True, slots=True)
class JobSubmission:
    """Everything a backend gets to know about a job it must run.

    ``key`` is unique per job attempt (``"<job id>.<attempt>"``) and stable
    across server restarts; backends use it to find a submission again after
    a crash (see :meth:`Backend.lookup`).
    """

    job_id: int
    attempt: int
    name: str
    spec: str
    options: Mapping[str, Any]
    working_dir: Path
    env: Mapping[str, str]
    priority: int = 0
    stdout_path: Path = field(default=Path("/dev/null"))
    stderr_path: Path = field(default=Path("/dev/null"))
    #: instrument jobs: the sample and method (command jobs: None)
    payload: Mapping[str, Any] | None = None
    #: array jobs: the tasks to run (only given to a backend that ``supports_arrays``);
    #: each task sees its index as ``GANTRY_ARRAY_INDEX`` and reports with ``task=``
    array: ArraySpec | None = None

    @property
    def key(self) -> str:
        return f"{self.job_id}.{self.attempt}"


@dataclass(frozen=True, slots=True)
class BackendMetrics:
    """What a backend's own work has cost since it started, for the server's ``/metrics``.

    ``polls`` poll cycles took ``poll_seconds`` in all; ``commands`` counts
    the scheduler commands run (``sbatch``, ``squeue``), by name.
    """

    polls: int = 0
    poll_seconds: float = 0.0
    commands: Mapping[str, int] = field(default_factory=dict)


class StatusReporter(Protocol):
    """How a backend tells the engine that a job moved. Never blocks."""

    def __call__(self, ref: str, report: StatusReport) -> None: ...


@dataclass(frozen=True, slots=True)
class BackendContext:
    """What the server hands a backend: its config, where to write, whom to tell.

    ``config`` holds the ``backend.<name>.*`` keys with the prefix removed
    (``max_cores``, ``account``), as strings, from the config file and the
    environment.
    """

    name: str
    data_dir: Path
    config: Mapping[str, str]
    report: StatusReporter
    #: ask the engine to look again at jobs :meth:`Backend.hold` kept back
    wake: Callable[[], None] = field(default=lambda: None)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def config_value(self, key: str, default: str | None = None) -> str | None:
        return self.config.get(key, default)


class BackendError(Exception):
    """A backend could not do what was asked; the message is for people."""


class InvalidPayload(ValueError):
    """A job's payload is not one the backend can run.

    ``field`` is the path of the offending value within the payload
    (``("method", 2, "technique_name")``); the message names it and the fix.
    """

    def __init__(self, field: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.field = field


def default_log_path(log_dir: Path, job_id: int, attempt: int, stream: LogStream) -> Path:
    """``<log_dir>/<job id>.stdout``; later attempts get ``<job id>.<attempt>.stdout``.

    Built from integers only, so a job name can never become a path.
    """
    if attempt <= 1:
        return log_dir / f"{int(job_id)}.{stream}"
    return log_dir / f"{int(job_id)}.{int(attempt)}.{stream}"


class Backend(ABC):
    """Base class of every backend; subclass it and register an entry point.

    Entry-point group: ``gantry.backends``, e.g.
    ``mybackend = mypackage.mybackend:MyBackend``.
    """

    #: Registered name; the entry-point name wins if they differ.
    name: ClassVar[str] = ""
    #: Every option the backend supports. ``None`` = supported, no default.
    #: Options a job gives that are not listed here are dropped with a warning.
    option_defaults: ClassVar[dict[str, Any]] = {}
    #: True if :meth:`submit` honours ``dependencies`` itself (Slurm's
    #: ``afterok``); otherwise the engine submits a job only once every
    #: dependency has completed and always passes an empty list.
    supports_dependencies: ClassVar[bool] = False
    #: True if the backend runs jobs given as a ``payload`` (data, such as an
    #: instrument job's sample and method) instead of a ``spec``; a job with a
    #: payload goes to the backend that accepts payloads.
    accepts_payloads: ClassVar[bool] = False
    #: True if the backend runs array jobs (``JobSubmission.array``): it starts
    #: the tasks (at most ``limit`` at once), reports each with ``task=<index>``
    #: and cancels one with :meth:`cancel_task`. Others are never given arrays.
    supports_arrays: ClassVar[bool] = False

    def __init__(self, context: BackendContext) -> None:
        self.context = context

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Long-lived work in the backend's own task group.

        Call ``task_status.started()`` once ready to accept submissions, then
        run until cancelled. The default has nothing to do.
        """
        task_status.started()
        await anyio.sleep_forever()

    def validate_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check option *values* (types, formats, limits) before a job is stored.

        Raise ``ValueError`` naming the option and the fix; return the options
        normalised. Unknown options never reach this method.
        """
        return dict(options)

    def validate_array(self, array: ArraySpec, spec: str) -> None:
        """Check, before the job is stored, that this backend can run ``array``.

        Called only if ``supports_arrays``, with the job's script. Raise
        ``ValueError`` naming the backend, what it cannot do and the fix (SGE,
        say, runs one stepped range of task ids). The default accepts any array.
        """

    async def validate_payload(self, payload: Any) -> dict[str, Any]:
        """Check a job's payload before the job is stored; return it as JSON to store.

        ``payload`` is what the job gave (a mapping, or a model already parsed
        from one). Raise :class:`InvalidPayload` naming the field and the fix.
        The default refuses every payload: a command backend runs a ``spec``.
        """
        raise InvalidPayload(
            (),
            f"backend {self.name!r} runs command jobs: give spec (a shell script), not payload",
        )

    def hold(self, job: JobSubmission) -> str | None:
        """Why ``job`` cannot be handed over yet, or None if it can.

        A held job stays ``queued`` with this reason (e.g. "waiting for a
        ready pipeline holding sample S1"); call ``context.wake()`` when
        something changed that may release it. Must be quick and not block.
        """
        return None

    @abstractmethod
    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        """Hand the job over and return the backend's reference at once.

        ``dependencies`` are refs of jobs on this backend that must complete
        first (only non-empty if :attr:`supports_dependencies`). Raise
        :class:`BackendError` if the job could not be handed over.
        """

    @abstractmethod
    async def cancel(self, ref: str) -> None:
        """Stop the job. Idempotent: cancelling an ended job is not an error."""

    async def cancel_task(self, ref: str, index: int) -> None:
        """Stop one task of an array job; idempotent like :meth:`cancel`."""
        raise BackendError(f"backend {self.name!r} runs no arrays")

    @abstractmethod
    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        """Current status of many jobs in one go (one query, not one per job)."""

    async def adopt(self, job: JobSubmission, ref: str) -> None:
        """Take back a job submitted before a server restart.

        Called at start-up for every job that was handed over and has not
        ended; the backend resumes watching it (and reports as usual). The
        default does nothing: backends that poll find it through ``status``.
        """

    async def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        """Find submissions whose ref was never recorded (a crash mid-submit).

        Map each ``JobSubmission.key`` the backend knows to its ref; a key
        missing from the answer was never handed over and will be submitted
        again. The default knows none.
        """
        return {}

    def logs(self, job_id: int, attempt: int, stream: LogStream) -> Path:
        """Where the log of one attempt lives (override if stored elsewhere)."""
        return default_log_path(self.context.log_dir, job_id, attempt, stream)

    def data(self, job_id: int, attempt: int) -> Path | None:
        """The folder of one attempt's data, for a backend whose jobs make data
        besides their logs (instrument samples); None (the default): no data."""
        return None

    def metrics(self) -> BackendMetrics | None:
        """Counters of the backend's own work, read at each scrape of ``/metrics``.

        Must be quick (no I/O). The default, None, has nothing to count.
        """
        return None

    async def health(self) -> tuple[bool, str]:
        """Whether the backend can take jobs now, with a sentence why (not)."""
        return True, "ok"

    async def close(self) -> None:
        """Release resources; called once, when the server stops."""
