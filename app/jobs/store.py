"""SQL of the job tables: every function takes a ``Connection`` and is sync.

Writes run inside the :class:`~gantry.jobs.writer.Writer`'s transactions, reads
on a worker thread (``anyio.to_thread``); nothing here touches the event
loop. SQL goes through SQLAlchemy Core with bound parameters only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)

from gantry.jobs.states import ACTIVE, JobState
from gantry.models import IdempotencyKey, Job, JobDependency, JobEvent, JobTag, utcnow

job_t: Table = Job.__table__  # type: ignore[attr-defined]
dep_t: Table = JobDependency.__table__  # type: ignore[attr-defined]
tag_t: Table = JobTag.__table__  # type: ignore[attr-defined]
event_t: Table = JobEvent.__table__  # type: ignore[attr-defined]
idem_t: Table = IdempotencyKey.__table__  # type: ignore[attr-defined]

JobRow = Mapping[str, Any]


class IdempotencyConflict(RuntimeError):
    """An ``Idempotency-Key`` was used before with a different body."""

    def __init__(self, key: str, job_id: int) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was used for job {job_id} with a different body: "
            "use a new key for a new job"
        )
        self.job_id = job_id


class UnknownDependencies(LookupError):
    """Some ``depends_on`` ids name no job."""

    def __init__(self, missing: Sequence[int]) -> None:
        self.missing = sorted(missing)
        super().__init__(f"unknown job ids in depends_on: {self.missing}")


@dataclass(slots=True)
class NewJob:
    """A validated job, ready to insert. ``after_new`` index jobs of the same batch."""

    name: str
    backend: str
    kind: str = "command"
    spec: str | None = None
    payload: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    priority: int = 0
    max_retries: int = 0
    retry_delay: float = 10.0
    #: ids of earlier jobs it runs after, sorted and distinct
    after_ids: list[int] = field(default_factory=list)
    after_new: list[int] = field(default_factory=list)


#: The columns of a new job that its :class:`NewJob` gives.
NEW_JOB_FIELDS = (
    "name",
    "kind",
    "backend",
    "spec",
    "payload",
    "options",
    "env",
    "working_dir",
    "inputs",
    "outputs",
    "tags",
    "warnings",
    "priority",
    "max_retries",
    "retry_delay",
)
#: The other columns of a new job, but for ``id`` and the two times.
INITIAL_VALUES: dict[str, Any] = {
    "state": JobState.QUEUED.value,
    "reason": None,
    "backend_ref": None,
    "exit_code": None,
    "attempt": 0,
    "started_at": None,
    "ended_at": None,
    "in_flight": False,
    "not_before": None,
}


def new_job_row(job_id: int, job: NewJob, at: datetime) -> dict[str, Any]:
    """The row :func:`insert_jobs` stored for ``job``, as :func:`get_job` reads it."""
    row = {"id": job_id, **{key: getattr(job, key) for key in NEW_JOB_FIELDS}}
    return {**row, **INITIAL_VALUES, "created_at": at, "updated_at": at}


@dataclass(frozen=True, slots=True)
class Created:
    """What :func:`insert_jobs` made: ids, their dependencies, and deps' states.

    ``new[k]`` was stored as job ``ids[k]`` at ``at``; a replayed submission
    has no new jobs and carries the stored row instead.
    """

    ids: list[int]
    new: Sequence[NewJob]
    at: datetime
    depends_on: dict[int, list[int]]
    #: id -> (state, name) of each dependency named by id
    dependency_states: dict[int, tuple[str, str]]
    events: list[dict[str, Any]]
    #: the job existed already (same Idempotency-Key and body): nothing was made
    replayed_row: dict[str, Any] | None = None

    @property
    def replayed(self) -> bool:
        return self.replayed_row is not None

    def rows(self) -> list[dict[str, Any]]:
        """The stored rows (built on demand: a big batch's caller needs only ids)."""
        if self.replayed_row is not None:
            return [self.replayed_row]
        return [new_job_row(i, job, self.at) for i, job in zip(self.ids, self.new, strict=True)]


@dataclass(slots=True)
class Transition:
    """One state change of one job, plus columns that change with it.

    ``to_state=None`` changes only columns and writes no event.
    """

    job_id: int
    from_state: str | None
    to_state: str | None
    message: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)


def insert_jobs(
    conn: Connection, new_jobs: Sequence[NewJob], idempotency: tuple[str, str] | None = None
) -> Created:
    """Insert a batch of jobs with their dependencies, tags and first events.

    ``idempotency`` is ``(key, body hash)``: a key seen before with the same
    hash returns the job made then; with another hash it is a conflict.
    """
    if idempotency is not None:
        key, body_hash = idempotency
        seen = conn.execute(
            select(idem_t.c.body_hash, idem_t.c.job_id).where(idem_t.c.key == key)
        ).first()
        if seen is not None:
            if seen.body_hash != body_hash:
                raise IdempotencyConflict(key, seen.job_id)
            job = get_job(conn, seen.job_id)
            assert job is not None  # the key row cascades with its job
            deps = get_dependencies(conn, [seen.job_id])
            return Created([seen.job_id], [], job["created_at"], deps, {}, [], replayed_row=job)
    existing = sorted({i for job in new_jobs for i in job.after_ids})
    states: dict[int, tuple[str, str]] = {}
    if existing:
        states = job_states(conn, existing)
        missing = [i for i in existing if i not in states]
        if missing:
            raise UnknownDependencies(missing)

    now = utcnow()
    count = len(new_jobs)
    columns = {key: list(map(attrgetter(key), new_jobs)) for key in NEW_JOB_FIELDS}
    constants = {**INITIAL_VALUES, "created_at": now, "updated_at": now}
    columns.update({key: [value] * count for key, value in constants.items()})
    ids = bulk_insert(conn, job_t, columns)
    depends_on: dict[int, list[int]] = {}
    for job_id, new in zip(ids, new_jobs, strict=True):
        if new.after_new:
            depends_on[job_id] = sorted(set(new.after_ids) | {ids[k] for k in new.after_new})
        elif new.after_ids:
            depends_on[job_id] = new.after_ids  # sorted and distinct (build_jobs)
    dep_rows = [(j, d) for j, deps in depends_on.items() for d in deps]
    _insert_plain(conn, dep_t, ("job_id", "depends_on_id"), dep_rows)
    tag_rows = [(t, i) for i, j in zip(ids, new_jobs, strict=True) for t in j.tags]
    _insert_plain(conn, tag_t, ("tag", "job_id"), tag_rows)
    events = _insert_events(
        conn,
        {
            "job_id": ids,
            "at": [now] * count,
            "from_state": [None] * count,
            "to_state": [JobState.QUEUED.value] * count,
            "message": ["submitted to gantry"] * count,
        },
    )
    if idempotency is not None:
        conn.execute(
            insert(idem_t).values(
                key=idempotency[0], body_hash=idempotency[1], job_id=ids[0], created_at=now
            )
        )
    return Created(ids, new_jobs, now, depends_on, states, events)


def insert_job_groups(conn: Connection, groups: Sequence[Sequence[NewJob]]) -> list[Created]:
    """Several submissions' jobs with one statement per table; one Created each, in order.

    ``after_new`` indexes stay relative to their own group.
    """
    if len(groups) == 1:
        return [insert_jobs(conn, groups[0])]
    flat: list[NewJob] = []
    bounds: list[tuple[int, int]] = []
    for group in groups:
        start = len(flat)
        flat.extend(
            replace(job, after_new=[start + k for k in job.after_new]) if job.after_new else job
            for job in group
        )
        bounds.append((start, len(flat)))
    created = insert_jobs(conn, flat)
    out: list[Created] = []
    for start, end in bounds:
        ids = created.ids[start:end]
        mine = set(ids)
        depends_on = {i: d for i, d in created.depends_on.items() if i in mine}
        named = {d for deps in depends_on.values() for d in deps}
        states = {i: s for i, s in created.dependency_states.items() if i in named}
        new = created.new[start:end]
        events = created.events[start:end]
        out.append(Created(ids, new, created.at, depends_on, states, events))
    return out


def apply_transitions(conn: Connection, transitions: Sequence[Transition]) -> list[dict[str, Any]]:
    """Write state changes and their events in the caller's transaction.

    A job's changes are merged in order (the last value of a column wins) and
    the jobs are updated with one executemany per set of changed columns: a
    cascade of 10,000 cancels is a few statements, not 20,000. Every event is kept.
    """
    merged: dict[int, dict[str, Any]] = {}
    for t in transitions:
        values = merged.setdefault(t.job_id, {})
        values["updated_at"] = t.at
        values.update(t.values)
        if t.to_state is not None:
            values["state"] = t.to_state
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for job_id, values in merged.items():
        groups.setdefault(tuple(sorted(values)), []).append(
            {"b_id": job_id, **{f"b_{k}": v for k, v in values.items()}}
        )
    for keys, rows in groups.items():
        stmt = (
            update(job_t)
            .where(job_t.c.id == bindparam("b_id"))
            .values({k: bindparam(f"b_{k}") for k in keys})
        )
        conn.execute(stmt, rows)
    changes = [t for t in transitions if t.to_state is not None]
    return _insert_events(conn, {key: list(map(attrgetter(key), changes)) for key in EVENT_COLUMNS})


#: The columns of an event but its id, as :class:`Transition` names them.
EVENT_COLUMNS = ("job_id", "at", "from_state", "to_state", "message")


def _insert_events(conn: Connection, columns: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """Events given column by column (:data:`EVENT_COLUMNS`); their rows, with ids."""
    if not columns["job_id"]:
        return []
    ids = bulk_insert(conn, event_t, columns)
    return [
        {"id": i, "job_id": j, "at": at, "from_state": f, "to_state": t, "message": m}
        for i, j, at, f, t, m in zip(ids, *(columns[key] for key in EVENT_COLUMNS), strict=True)
    ]


def bulk_insert(conn: Connection, table: Table, columns: Mapping[str, Sequence[Any]]) -> list[int]:
    """Insert rows given column by column (every column but ``id``); their new ids.

    On SQLite the server's single writer (gantry.jobs.writer) is the only one
    inserting jobs and events, so ids can be handed out here and the rows
    inserted with one plain DBAPI executemany: SQLAlchemy's RETURNING path
    builds and compiles multi-row statements and was half the cost of a batch
    submit. Elsewhere (PostgreSQL) the sequence hands out ids via RETURNING.
    """
    names = [c.name for c in table.c if c.name != "id"]
    values = [columns[name] for name in names]
    count = len(values[0])
    if not count:
        return []
    if conn.dialect.name != "sqlite":
        stmt = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        rows = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
        return [row.id for row in conn.execute(stmt, rows)]
    last = conn.exec_driver_sql(f"SELECT max(id) FROM {table.name}").scalar()
    ids = range(int(last or 0) + 1, int(last or 0) + 1 + count)
    # The columns' own bind processors (JSON, UTC datetimes, booleans), applied
    # column by column with C-level maps: no Python frame per row.
    processed: list[Sequence[Any]] = [ids]
    for name, column in zip(names, values, strict=True):
        process = table.c[name].type._cached_bind_processor(conn.dialect)
        processed.append(column if process is None else _converted(process, column))
    marks = ", ".join("?" * (len(names) + 1))
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} (id, {', '.join(names)}) VALUES ({marks})",
        list(zip(*processed, strict=True)),
    )
    return list(ids)


def _insert_plain(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Rows (tuples in ``columns`` order) of plain integer/text columns."""
    if not rows:
        return
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    names, marks = ", ".join(columns), ", ".join("?" * len(columns))
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", rows)


def _converted(process: Callable[[Any], Any], values: Sequence[Any]) -> list[Any]:
    """``values`` through a bind processor, each distinct object converted once.

    The rows of a batch share most values (one ``now``, one options dict, the
    tags list): the JSON encoding or datetime formatting then runs once per
    distinct object, not once per row. Objects are told apart by identity
    (``values`` keeps them alive meanwhile); None stays NULL.
    """
    keys = list(map(id, values))
    distinct = dict(zip(keys, values, strict=True))
    empty: dict[type, Any] = {}  # separate requests' empty lists and dicts, encoded once

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not value and type(value) in (list, dict):
            kind = type(value)
            if kind not in empty:
                empty[kind] = process(value)
            return empty[kind]
        return process(value)

    done = {key: convert(value) for key, value in distinct.items()}
    return list(map(done.__getitem__, keys))


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- reads -------------------------------------------------------------------


def get_job(conn: Connection, job_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(job_t).where(job_t.c.id == job_id)).mappings().first()
    return dict(row) if row else None


def get_job_detail(conn: Connection, job_id: int) -> dict[str, Any] | None:
    """A job with its ``depends_on`` ids, in one read."""
    row = get_job(conn, job_id)
    if row is None:
        return None
    return {**row, "depends_on": get_dependencies(conn, [job_id]).get(job_id, [])}


def get_dependencies(conn: Connection, job_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for chunk in _chunks(sorted(job_ids), 900):
        rows = conn.execute(
            select(dep_t.c.job_id, dep_t.c.depends_on_id)
            .where(dep_t.c.job_id.in_(chunk))
            .order_by(dep_t.c.job_id, dep_t.c.depends_on_id)
        )
        for row in rows:
            found.setdefault(row.job_id, []).append(row.depends_on_id)
    return found


@dataclass(frozen=True, slots=True)
class JobFilter:
    states: Sequence[str] = ()
    backend: str | None = None
    name_prefix: str | None = None
    tag: str | None = None


def list_jobs(
    conn: Connection, where: JobFilter, *, before_id: int | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first; keyset pagination: pass the last id seen as ``before_id``."""
    columns = [c for c in job_t.c if c.name not in ("spec", "env", "payload")]
    query = select(*columns)
    conditions: list[ColumnElement[bool]] = []
    # The column the page is ordered by. With a tag it is job_tag.job_id (equal to
    # job.id): SQLite then walks the (tag, job_id) key backwards and stops after
    # ``limit`` rows instead of sorting every job with the tag.
    key = job_t.c.id
    if where.tag is not None:
        query = query.join(tag_t, and_(tag_t.c.job_id == job_t.c.id, tag_t.c.tag == where.tag))
        key = tag_t.c.job_id
    if where.states:
        conditions.append(job_t.c.state.in_(list(where.states)))
    if where.backend is not None:
        conditions.append(job_t.c.backend == where.backend)
    if where.name_prefix:
        if conn.dialect.name == "sqlite":
            # A range, not LIKE (case-insensitive in SQLite): uses the (name, id) index.
            conditions.append(job_t.c.name >= where.name_prefix)
            conditions.append(job_t.c.name < where.name_prefix + "\U0010ffff")
        else:
            # Collations elsewhere need not sort U+10FFFF last: an escaped LIKE is exact.
            conditions.append(job_t.c.name.startswith(where.name_prefix, autoescape=True))
    if before_id is not None:
        conditions.append(key < before_id)
    if conditions:
        query = query.where(*conditions)
    query = query.order_by(key.desc()).limit(limit)
    if where.name_prefix and where.tag is None and conn.dialect.name == "sqlite":
        recent = _recent_window(conn, query, before_id, limit)
        if recent is not None:
            return recent
    return [dict(row) for row in conn.execute(query).mappings()]


#: How many of the newest ids a name-prefix page looks through first.
PREFIX_WINDOW = 20_000


def _recent_window(
    conn: Connection, query: Any, before_id: int | None, limit: int
) -> list[dict[str, Any]] | None:
    """A name-prefix page found by walking the newest ids, if it is there.

    SQLite's planner always takes the (name, id) index for a prefix: right for
    a rare name, but a common one (10 % of a million jobs) makes it collect
    and sort every match. Walking the primary key backwards through a bounded
    window finds a common name's page at once; None sends a rare one to the
    index.
    """
    top = before_id
    if top is None:
        top = int(conn.execute(select(func.max(job_t.c.id))).scalar() or 0) + 1
    windowed = query.where(job_t.c.id >= top - PREFIX_WINDOW).with_hint(
        job_t, "NOT INDEXED", dialect_name="sqlite"
    )
    rows = [dict(row) for row in conn.execute(windowed).mappings()]
    return rows if len(rows) == limit or top - PREFIX_WINDOW <= 1 else None


def list_events(
    conn: Connection, *, job_id: int | None, after_id: int, limit: int
) -> list[dict[str, Any]]:
    query = select(event_t).where(event_t.c.id > after_id)
    if job_id is not None:
        query = query.where(event_t.c.job_id == job_id)
    query = query.order_by(event_t.c.id).limit(limit)
    return [dict(row) for row in conn.execute(query).mappings()]


def load_active(conn: Connection) -> list[dict[str, Any]]:
    """Every job that has not ended, oldest first (start-up reconciliation)."""
    states = [s.value for s in ACTIVE]
    query = select(job_t).where(job_t.c.state.in_(states)).order_by(job_t.c.id)
    return [dict(row) for row in conn.execute(query).mappings()]


def job_states(conn: Connection, job_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    """id -> (state, name) of the jobs that exist among ``job_ids``."""
    found: dict[int, tuple[str, str]] = {}
    query = _job_states_query()
    for chunk in _chunks(sorted(set(job_ids)), 900):
        rows = conn.execute(query, {"ids": list(chunk)})
        found.update({row.id: (row.state, row.name) for row in rows})
    return found


@cache
def _job_states_query() -> Select[tuple[int, str, str]]:
    # Built once: constructing the statement cost more than running it for a
    # group of single submits.
    ids: BindParameter[list[int]] = bindparam("ids", expanding=True)
    return select(job_t.c.id, job_t.c.state, job_t.c.name).where(job_t.c.id.in_(ids))


def count_by_state(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(job_t.c.state, func.count()).group_by(job_t.c.state))
    return {row[0]: row[1] for row in rows}
