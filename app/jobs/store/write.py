"""The write path of the job tables: new jobs, and state changes with their events.

Every function takes a ``Connection`` and is sync; they run inside the
:class:`~gantry.jobs.writer.Writer`'s transactions. Rows are given column by
column to :func:`~gantry.jobs.store.sqlite.bulk_insert`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql

from gantry.jobs.spec import NewJob
from gantry.jobs.states import JobState
from gantry.jobs.store.owners import owned
from gantry.jobs.store.read import (
    dep_t,
    event_t,
    get_dependencies,
    get_job,
    idem_t,
    job_states,
    job_t,
    tag_t,
    task_t,
)
from gantry.jobs.store.records import (
    EVENT_COLUMNS,
    INITIAL_VALUES,
    NEW_JOB_FIELDS,
    Created,
    Event,
    IdempotencyConflict,
    Transition,
    UnknownDependencies,
)
from gantry.jobs.store.sqlite import bulk_insert, converted, insert_plain
from gantry.models import utcnow


def insert_jobs(
    conn: Connection,
    new_jobs: Sequence[NewJob],
    idempotency: tuple[str, str] | None = None,
    owner: str | None = None,
) -> Created:
    """Insert a batch of jobs with their dependencies, tags and first events.

    ``idempotency`` is ``(key, body hash)``: a key seen before with the same
    hash returns the job made then; with another hash it is a conflict.
    ``owner``: the server that runs them (several servers; None on SQLite).
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
    if owner is not None:
        constants["owner"] = owner
    columns.update({key: [value] * count for key, value in constants.items()})
    ids = bulk_insert(conn, job_t, columns)
    depends_on = dependencies_of(ids, new_jobs)
    dep_rows = [(j, d) for j, deps in depends_on.items() for d in deps]
    insert_plain(conn, dep_t, ("job_id", "depends_on_id"), dep_rows)
    tag_rows = [(t, i) for i, j in zip(ids, new_jobs, strict=True) for t in j.tags]
    insert_plain(conn, tag_t, ("tag", "job_id"), tag_rows)
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


def dependencies_of(ids: Sequence[int], new_jobs: Sequence[NewJob]) -> dict[int, list[int]]:
    """New job id -> the ids it runs after (earlier jobs and jobs of its batch)."""
    depends_on: dict[int, list[int]] = {}
    for job_id, new in zip(ids, new_jobs, strict=True):
        if new.after_new:
            depends_on[job_id] = sorted(set(new.after_ids) | {ids[k] for k in new.after_new})
        elif new.after_ids:
            depends_on[job_id] = new.after_ids  # sorted and distinct (build_jobs)
    return depends_on


def split_groups(
    groups: Sequence[Sequence[NewJob]],
) -> tuple[list[NewJob], list[tuple[int, int]]]:
    """Several submissions' jobs as one list (``after_new`` made absolute) and their bounds."""
    flat: list[NewJob] = []
    bounds: list[tuple[int, int]] = []
    for group in groups:
        start = len(flat)
        flat.extend(
            replace(job, after_new=[start + k for k in job.after_new]) if job.after_new else job
            for job in group
        )
        bounds.append((start, len(flat)))
    return flat, bounds


def regroup(created: Created, bounds: Sequence[tuple[int, int]]) -> list[Created]:
    """One :class:`Created` per submission of a joint insert, in order."""
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


def insert_job_groups(
    conn: Connection, groups: Sequence[Sequence[NewJob]], owner: str | None = None
) -> list[Created]:
    """Several submissions' jobs with one statement per table; one Created each, in order.

    ``after_new`` indexes stay relative to their own group.
    """
    if len(groups) == 1:
        return [insert_jobs(conn, groups[0], owner=owner)]
    flat, bounds = split_groups(groups)
    return regroup(insert_jobs(conn, flat, owner=owner), bounds)


def merge_transitions(transitions: Sequence[Transition]) -> dict[int, dict[str, Any]]:
    """Job id -> the columns its changes set, in order (the last value of a column wins)."""
    merged: dict[int, dict[str, Any]] = {}
    for t in transitions:
        if t.task is not None:
            continue  # a task's row, not the job's
        values = merged.setdefault(t.job_id, {})
        values["updated_at"] = t.at
        values.update(t.values)
        if t.to_state is not None:
            values["state"] = t.to_state
    return merged


def apply_transitions(
    conn: Connection, transitions: Sequence[Transition], owner: str | None = None
) -> list[Event]:
    """Write state changes and their events in the caller's transaction.

    A job's changes are merged in order (the last value of a column wins) and
    the jobs are updated with one executemany per set of changed columns: a
    cascade of 10,000 cancels is a few statements, not 20,000. Every event is kept.

    ``owner`` (several servers): only changes of jobs this server still owns
    are written, with those rows locked against a takeover until the commit;
    a server that lost its lease changes nothing another server runs now.
    """
    if owner is not None:
        mine = owned(conn, owner, {t.job_id for t in transitions}, lock=True)
        transitions = [t for t in transitions if t.job_id in mine]
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for job_id, values in merge_transitions(transitions).items():
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
    _upsert_tasks(conn, [t for t in transitions if t.task is not None])
    changes = [t for t in transitions if t.to_state is not None]
    return _insert_events(conn, {key: list(map(attrgetter(key), changes)) for key in EVENT_COLUMNS})


def merge_tasks(transitions: Sequence[Transition]) -> dict[tuple[int, int], dict[str, Any]]:
    """(job id, index) -> the columns of its task row, in order (the last value wins)."""
    merged: dict[tuple[int, int], dict[str, Any]] = {}
    for t in transitions:
        if t.task is not None:
            merged.setdefault((t.job_id, t.task), {}).update(t.values)
    return merged


def _upsert_tasks(conn: Connection, transitions: Sequence[Transition]) -> None:
    """Task rows made or updated, one executemany per set of columns.

    On SQLite a plain DBAPI executemany (as :func:`bulk_insert`): SQLAlchemy's
    ON CONFLICT statement cost an array's 10,000 tasks more server CPU than
    10,000 single jobs' state changes.
    """
    if not transitions:
        return
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for (job_id, index), values in merge_tasks(transitions).items():
        groups.setdefault(tuple(sorted(values)), []).append(
            {"job_id": job_id, "idx": index, **values}
        )
    for keys, rows in groups.items():
        if conn.dialect.name == "sqlite":
            names = ("job_id", "idx", *keys)
            columns = [
                converted(process, [row[name] for row in rows])
                if (process := task_t.c[name].type._cached_bind_processor(conn.dialect))
                else [row[name] for row in rows]
                for name in names
            ]
            updates = ", ".join(f"{k} = excluded.{k}" for k in keys)
            marks = ", ".join("?" * len(names))
            conn.exec_driver_sql(
                f"INSERT INTO array_task ({', '.join(names)}) VALUES ({marks}) "
                f"ON CONFLICT (job_id, idx) DO UPDATE SET {updates}",
                list(zip(*columns, strict=True)),
            )
            continue
        stmt = postgresql.insert(task_t)
        stmt = stmt.on_conflict_do_update(
            index_elements=["job_id", "idx"], set_={k: stmt.excluded[k] for k in keys}
        )
        conn.execute(stmt, rows)


def _insert_events(conn: Connection, columns: Mapping[str, list[Any]]) -> list[Event]:
    """Events given column by column (:data:`EVENT_COLUMNS`); their rows, with ids."""
    if not columns["job_id"]:
        return []
    ids = bulk_insert(conn, event_t, columns)
    return [
        {"id": i, "job_id": j, "at": at, "from_state": f, "to_state": t, "message": m}
        for i, j, at, f, t, m in zip(ids, *(columns[key] for key in EVENT_COLUMNS), strict=True)
    ]
