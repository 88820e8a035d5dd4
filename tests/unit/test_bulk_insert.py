"""Batch inserts: values shared between jobs, equal but separate, or empty
are each stored as their own job's, and read back as they were given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gantry import db
from gantry.jobs.service import Catalog, build_jobs
from gantry.jobs.store import NewJob, get_dependencies, get_job, insert_job_groups, insert_jobs
from gantry.schemas import JobCreate
from tests.fakes import FakeBackend


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.upgrade(url)
    return db.make_engine(url)


def test_shared_separate_and_empty_values_round_trip(engine: Any) -> None:
    shared_tags = ["a", "b"]
    jobs = [
        NewJob(name="one", backend="local", spec="x", tags=shared_tags, options={"cores": 2}),
        NewJob(name="two", backend="local", spec="y", tags=shared_tags, env={"A": "1"}),
        NewJob(name="three", backend="local", spec="z", tags=["a", "b"], inputs=["in"]),
        NewJob(name="four", backend="local", spec="w"),
    ]
    with engine.begin() as conn:
        created = insert_jobs(conn, jobs)
    with engine.connect() as conn:
        rows = [get_job(conn, i) for i in created.ids]
    assert [r["name"] for r in rows if r] == ["one", "two", "three", "four"]
    for row, job in zip(rows, jobs, strict=True):
        assert row is not None
        for key in ("tags", "options", "env", "inputs", "outputs", "warnings", "payload"):
            assert row[key] == getattr(job, key), key
        assert row["state"] == "queued" and row["attempt"] == 0 and row["in_flight"] is False
    assert created.rows()[1]["env"] == {"A": "1"}


def test_groups_keep_their_own_ids_dependencies_and_events(engine: Any) -> None:
    with engine.begin() as conn:
        (first,) = insert_jobs(conn, [NewJob(name="dep", backend="local", spec="x")]).ids
    groups = [
        [NewJob(name="a", backend="local", spec="x", after_ids=[first])],
        [
            NewJob(name="b", backend="local", spec="x"),
            NewJob(name="c", backend="local", spec="x", after_new=[0]),
        ],
    ]
    with engine.begin() as conn:
        one, two = insert_job_groups(conn, groups)
    assert one.depends_on == {one.ids[0]: [first]}
    assert one.dependency_states == {first: ("queued", "dep")}
    assert two.depends_on == {two.ids[1]: [two.ids[0]]}
    assert [e["job_id"] for e in one.events + two.events] == one.ids + two.ids
    with engine.connect() as conn:
        assert get_dependencies(conn, [*one.ids, *two.ids]) == {
            one.ids[0]: [first],
            two.ids[1]: [two.ids[0]],
        }


async def test_a_batch_shares_equal_values_and_keeps_different_ones(tmp_path: Path) -> None:
    backend = FakeBackend(None)
    catalog = Catalog({"fake": backend}, {}, "fake")
    requests = [
        JobCreate(name="a", spec="x", tags=["t2", "t1", "t1"]),
        JobCreate(name="b", spec="x", tags=["t2", "t1", "t1"]),
        JobCreate(name="c", spec="x", tags=["t3"], depends_on=[7, 3, 7]),
    ]
    try:
        a, b, c = await build_jobs(requests, catalog, tmp_path, batch=True)
    finally:  # the fake never ran: close both ends of its queue
        await backend.close()
        backend._receive.close()
    assert a.tags == ["t1", "t2"] and a.tags is b.tags
    assert c.tags == ["t3"]
    assert a.env is b.env is c.env and a.env == {}
    assert c.after_ids == [3, 7]
