"""Several servers on one real PostgreSQL, in one process: the dispatch claim.

Two servers race to dispatch the same 1,000 queued jobs: the one that lost
its lease (stalled, then back) still holds them in memory when the other
took them over, and both dispatchers are released at once. Each job reaches
a backend once. Below that, two transactions claim the same 1,000 rows at
once with ``FOR UPDATE SKIP LOCKED``: each row goes to one of them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, text

from gantry.backends.base import JobSubmission
from gantry.jobs import servers
from gantry.jobs.store import owners
from gantry.main import create_app
from gantry.settings import Settings
from tests import postgres as postgres_cluster
from tests.fakes import FakeBackend

pytestmark = pytest.mark.postgres
API = "/api/v1"
COUNT = 1000


class HeldFake(FakeBackend):
    """Holds every job back until released; counts every submit, across servers."""

    released: ClassVar[bool] = False
    handed: ClassVar[Counter[int]] = Counter()

    def hold(self, job: JobSubmission) -> str | None:
        return None if HeldFake.released else "held by the test"

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        HeldFake.handed[job.job_id] += 1
        return await super().submit(job, dependencies)


@asynccontextmanager
async def server(url: str, data_dir: Path) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    settings = Settings(
        data_dir=data_dir, database_url=url, default_backend="fake", server_lease=60
    )
    app = create_app(settings, backends={"fake": HeldFake})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gantry") as client:
            yield client, app


def sql(url: str, statement: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    with engine.begin() as conn:
        result = conn.execute(text(statement), params)
        rows = list(result) if result.returns_rows else []
    engine.dispose()
    return rows


async def test_two_servers_racing_for_the_same_jobs_hand_each_over_once(
    postgres: postgres_cluster.Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    HeldFake.released = False
    HeldFake.handed.clear()
    url = postgres.new_database()
    async with AsyncExitStack() as stack:
        # Server a is stalled as far as its lease goes: it never renews it, so it
        # never learns that it lost it, and keeps dispatching what it holds.
        with monkeypatch.context() as patched:
            patched.setattr(servers.Membership, "_keep_lease", lambda self: None)
            a_client, a_app = await stack.enter_async_context(server(url, tmp_path / "a"))
        jobs = [{"name": f"j{n}", "spec": "true"} for n in range(COUNT)]
        answer = await a_client.post(f"{API}/jobs/batch", json={"jobs": jobs})
        assert answer.status_code == 201, answer.text
        ids = [j["id"] for j in answer.json()["jobs"]]
        a_engine = a_app.state.engine
        b_client, b_app = await stack.enter_async_context(server(url, tmp_path / "b"))
        b_engine = b_app.state.engine
        # Server a stalls past its lease: b sees it retired and takes its jobs,
        # while a still holds all of them in memory.
        a_id = a_engine.store.owner
        sql(url, "UPDATE gantry_server SET retired_at = now() WHERE id = :id", id=a_id)
        with anyio.fail_after(30):
            while len(b_engine.jobs) < COUNT:
                await anyio.sleep(0.05)
        assert set(a_engine.jobs) >= set(ids) and set(b_engine.jobs) >= set(ids)
        # Both let go at once: each job must reach a backend exactly once.
        a_claims: list[tuple[int, int]] = []
        claim = a_engine.store.claim

        async def counted(intents: Any) -> set[int]:
            got: set[int] = await claim(intents)
            a_claims.append((len(intents), len(got)))
            return got

        a_engine.store.claim = counted
        HeldFake.released = True
        for app in (a_app, b_app):
            app.state.catalog.running["fake"].context.wake()
        with anyio.fail_after(60):
            while sum(HeldFake.handed.values()) < COUNT:
                await anyio.sleep(0.05)
            await anyio.sleep(1.5)  # a's retried claims (every second) would land now
        assert set(HeldFake.handed) == set(ids)
        assert max(HeldFake.handed.values()) == 1
        states = {row[0]: row[1] for row in sql(url, "SELECT id, attempt FROM job")}
        assert set(states.values()) == {1}
        b_owner = b_engine.store.owner
        assert {row[0] for row in sql(url, "SELECT DISTINCT owner FROM job")} == {b_owner}
        assert b_client is not None
        # a did try, with every job, and was given none.
        assert sum(tried for tried, _ in a_claims) >= COUNT
        assert sum(got for _, got in a_claims) == 0


def test_two_claims_of_the_same_rows_at_once_split_them(
    postgres: postgres_cluster.Cluster, tmp_path: Path
) -> None:
    from gantry import db

    url = postgres.new_database()
    db.upgrade(url)
    sql(
        url,
        "INSERT INTO job (name, kind, backend, options, env, inputs, outputs, tags, warnings,"
        " priority, max_retries, retry_delay, state, attempt, in_flight, created_at,"
        " updated_at, owner) SELECT 'j' || n, 'command', 'fake', '{}', '{}', '[]', '[]', '[]',"
        " '[]', 0, 0, 1, 'queued', 0, false, now(), now(), 'me'"
        " FROM generate_series(1, :count) AS n",
        count=COUNT,
    )
    ids = [row[0] for row in sql(url, "SELECT id FROM job ORDER BY id")]
    attempts = {i: 1 for i in ids}
    engine = create_engine(url, pool_size=4)
    both_locked = threading.Barrier(2)
    results: list[owners.Claim] = []

    def claim() -> None:
        with engine.begin() as conn:
            found = owners.claim(conn, "me", attempts)
            conn.execute(
                text("UPDATE job SET attempt = 1 WHERE id = ANY(:ids)"),
                {"ids": sorted(found.claimed)},
            )
            results.append(found)
            both_locked.wait(timeout=30)  # hold the locks until both have claimed

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    engine.dispose()
    first, second = (r.claimed for r in results)
    assert not first & second, "a row was claimed twice"
    assert first | second == set(ids)
    # A later claim at the same attempt finds them all taken.
    engine = create_engine(url)
    with engine.begin() as conn:
        again = owners.claim(conn, "me", attempts)
    engine.dispose()
    assert again.claimed == set() and again.lost == set(ids)


def test_jobs_bound_to_a_machine_move_only_to_a_server_on_its_host(
    postgres: postgres_cluster.Cluster,
) -> None:
    from gantry import db

    url = postgres.new_database()
    db.upgrade(url)
    for backend in ("local", "slurm"):
        sql(
            url,
            "INSERT INTO job (name, kind, backend, options, env, inputs, outputs, tags, warnings,"
            " priority, max_retries, retry_delay, state, attempt, in_flight, created_at,"
            " updated_at, owner) VALUES (:name, 'command', :backend, '{}', '{}', '[]', '[]',"
            " '[]', '[]', 0, 0, 1, 'running', 1, false, now(), now(), 'dead')",
            name=backend,
            backend=backend,
        )
    engine = create_engine(url)
    with engine.begin() as conn:
        elsewhere = owners.take_jobs(conn, "far", "dead", host_bound=("local",), same_host=False)
        here = owners.take_jobs(conn, "near", "dead", host_bound=("local",), same_host=True)
    engine.dispose()
    names = {row[0]: row[1] for row in sql(url, "SELECT id, backend FROM job")}
    assert [names[i] for i in elsewhere] == ["slurm"]
    assert [names[i] for i in here] == ["local"]
