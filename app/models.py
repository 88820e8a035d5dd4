"""Database tables (SQLModel). alembic owns the schema: change both together.

Timestamps are UTC. ``job.state`` always equals the ``to_state`` of the job's
newest event: both are written in one transaction by ``gantry.jobs.store``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Text, text
from sqlmodel import Field, SQLModel

from gantry.jobs.spec import DEFAULT_RETRY_DELAY


def utcnow() -> datetime:
    return datetime.now(UTC)


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        Index("ix_job_state_id", "state", "id"),
        Index("ix_job_backend_id", "backend", "id"),
        Index("ix_job_name_id", "name", "id"),
        Index("ix_job_owner_state", "owner", "state"),
        Index(
            "ix_job_cancel_request",
            "owner",
            postgresql_where=text("cancel_request IS NOT NULL"),
            sqlite_where=text("cancel_request IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    kind: str = Field(default="command", max_length=16)
    backend: str = Field(max_length=64)
    spec: str | None = Field(default=None, sa_column=Column(Text))
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    env: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    working_dir: str | None = Field(default=None, max_length=4096)
    inputs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    outputs: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    warnings: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    priority: int = 0
    #: an array job: its tasks, in Slurm's --array syntax (gantry.jobs.arrays)
    array: str | None = Field(default=None, sa_column=Column(Text))
    #: the name of the API token that submitted it (None: a server without tokens)
    submitted_by: str | None = Field(default=None, max_length=100)
    state: str = Field(default="queued", max_length=16)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    backend_ref: str | None = Field(default=None, max_length=128)
    exit_code: int | None = None
    attempt: int = 0
    #: retries allowed after a failed attempt, and the first retry's delay (doubles)
    max_retries: int = 0
    retry_delay: float = DEFAULT_RETRY_DELAY
    #: the dispatch intent of ``attempt`` is written and its ref is not (yet)
    in_flight: bool = False
    #: a retry waits until then
    not_before: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    ended_at: datetime | None = None
    #: what the ended job cost, as its backend measured it (gantry.jobs.accounting)
    cpu_user_seconds: float | None = None
    cpu_system_seconds: float | None = None
    max_rss_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    wall_seconds: float | None = None
    driver_seconds: float | None = None
    samples: int | None = Field(default=None, sa_column=Column(BigInteger))
    #: the server that runs it while it has not ended (PostgreSQL; None on SQLite)
    owner: str | None = Field(default=None, max_length=36)
    #: a cancel asked of a server that does not own the job, for its owner to carry out
    cancel_request: str | None = Field(default=None, sa_column=Column(Text))


class Server(SQLModel, table=True):
    """One running server on a shared PostgreSQL; its lease is its heartbeat.

    Times are the database's clock (``now()``), never a server's own, so a
    server whose clock jumps neither loses its lease nor takes a live one.
    """

    __tablename__ = "gantry_server"

    id: str = Field(primary_key=True, max_length=36)
    host: str = Field(max_length=255)
    #: boot id and pid namespace: where ``pid`` names this process (a dead one is taken at once)
    machine: str = Field(max_length=100)
    pid: int
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    heartbeat_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    #: it stopped, or the others took its jobs: it never renews its lease again
    retired_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )


class ArrayTask(SQLModel, table=True):
    """One task of an array job, written when it starts and when it ends.

    A task that has not started has no row: an array of 10,000 tasks costs
    one job row at submit, and a row per task only as tasks run.
    """

    __tablename__ = "array_task"

    job_id: int = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")
    idx: int = Field(primary_key=True)
    state: str = Field(max_length=16)
    exit_code: int | None = None
    reason: str | None = Field(default=None, sa_column=Column(Text))
    started_at: datetime | None = None
    ended_at: datetime | None = None
    cpu_user_seconds: float | None = None
    cpu_system_seconds: float | None = None
    max_rss_bytes: int | None = Field(default=None, sa_column=Column(BigInteger))
    wall_seconds: float | None = None


class JobDependency(SQLModel, table=True):
    """``job_id`` runs only after ``depends_on_id`` completed (afterok)."""

    __tablename__ = "job_dependency"
    __table_args__ = (Index("ix_job_dependency_depends_on_id", "depends_on_id"),)

    job_id: int = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")
    depends_on_id: int = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")


class JobTag(SQLModel, table=True):
    """One row per tag, so the tag filter is an index lookup even at 1M jobs."""

    __tablename__ = "job_tag"

    tag: str = Field(primary_key=True, max_length=64)
    job_id: int = Field(foreign_key="job.id", primary_key=True, ondelete="CASCADE")


class JobEvent(SQLModel, table=True):
    """One state transition, written in the same transaction as the change."""

    __tablename__ = "job_event"
    __table_args__ = (Index("ix_job_event_job_id_id", "job_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    message: str | None = Field(default=None, sa_column=Column(Text))


class IdempotencyKey(SQLModel, table=True):
    """``Idempotency-Key`` of a submission: the same key and body return the same job."""

    __tablename__ = "idempotency_key"

    key: str = Field(primary_key=True, max_length=200)
    body_hash: str = Field(max_length=64)
    job_id: int = Field(foreign_key="job.id", ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """An API token; only a hash of its secret is stored."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    secret_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class Pipeline(SQLModel, table=True):
    """State of one pipeline of the devices file: its sample, readiness, running job.

    The pipeline's components come from the devices file; only what changes
    while the server runs (and must survive a restart) is stored here.
    """

    __tablename__ = "pipeline"

    name: str = Field(primary_key=True, max_length=200)
    sample: str | None = Field(default=None, max_length=200)
    ready: bool = False
    job_id: int | None = Field(default=None, foreign_key="job.id", ondelete="SET NULL")
    updated_at: datetime = Field(default_factory=utcnow)
