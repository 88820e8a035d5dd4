"""Start-up reconciliation with a backend whose memory outlives the server
(a class-level dict plays the cluster): the in-doubt dispatch, re-adoption,
outcomes learnt while down, and the dependency graph rebuilt."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import create_engine, text

from gantry.backends.base import BackendStatus, JobSubmission, StatusReport
from tests.fakes import FakeBackend
from tests.integration.test_api_jobs import API, submit, wait_state


class ClusterFake(FakeBackend):
    """Reports live in the class, so a second server sees the first one's jobs."""

    world: ClassVar[dict[str, StatusReport]] = {}
    adopted: ClassVar[list[str]] = []
    known_keys: ClassVar[dict[str, str]] = {}

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.reports = ClusterFake.world

    async def adopt(self, job: JobSubmission, ref: str) -> None:
        ClusterFake.adopted.append(ref)

    async def lookup(self, keys: Sequence[str]) -> dict[str, str]:
        return {k: v for k, v in ClusterFake.known_keys.items() if k in keys}


def reset_world() -> None:
    ClusterFake.world.clear()
    ClusterFake.adopted.clear()
    ClusterFake.known_keys.clear()


def sql(settings: Any, statement: str) -> None:
    engine = create_engine(settings.resolved_database_url)
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


async def test_running_jobs_are_adopted_and_outcomes_learnt_while_down(
    make_client: Callable[..., Any], settings: Any
) -> None:
    reset_world()
    backends = {"fake": ClusterFake}
    async with make_client(backends) as (client, _):
        running = await submit(client, name="running", spec="hang")
        finished = await submit(client, name="finished", spec="hang")
        after = await submit(client, name="after", depends_on=[running["id"]])
        await wait_state(client, running["id"], "running")
        await wait_state(client, finished["id"], "running")
    # while the server is down, one job ends on the "cluster"
    ClusterFake.world[f"fake-{finished['id']}.1"] = StatusReport(
        BackendStatus.FAILED, exit_code=9, reason="exited 9"
    )
    async with make_client(backends) as (client, app):
        assert sorted(ClusterFake.adopted) == sorted(
            [f"fake-{running['id']}.1", f"fake-{finished['id']}.1"]
        )
        done = await wait_state(client, finished["id"], "failed")
        assert done["exit_code"] == 9
        assert (await client.get(f"{API}/jobs/{after['id']}")).json()["state"] == "queued"
        fake = app.state.catalog.running["fake"]
        fake._set(f"fake-{running['id']}.1", StatusReport(BackendStatus.COMPLETED, exit_code=0))
        await wait_state(client, after["id"], "completed")
        assert (await client.get(f"{API}/jobs/{running['id']}")).json()["attempt"] == 1


async def test_a_dispatch_lost_in_a_crash_is_found_or_made_again(
    make_client: Callable[..., Any], settings: Any
) -> None:
    reset_world()
    backends = {"fake": ClusterFake}
    async with make_client(backends) as (client, _):
        lost = await submit(client, name="lost", spec="hang")
        found = await submit(client, name="found", spec="hang")
        await wait_state(client, found["id"], "running")
        await wait_state(client, lost["id"], "running")
    # Simulate a crash between the dispatch intent and recording the ref.
    sql(settings, "UPDATE job SET state='queued', backend_ref=NULL, in_flight=TRUE")
    ClusterFake.known_keys[f"{found['id']}.1"] = f"fake-{found['id']}.1"
    async with make_client(backends) as (client, app):
        redone = await wait_state(client, lost["id"], "running")
        assert redone["attempt"] == 2 and redone["backend_ref"] == f"fake-{lost['id']}.2"
        kept = await wait_state(client, found["id"], "submitted", "running")
        assert kept["attempt"] == 1 and kept["backend_ref"] == f"fake-{found['id']}.1"
        resubmitted = [s.key for s in app.state.catalog.running["fake"].submitted]
        assert resubmitted == [f"{lost['id']}.2"]


async def test_a_cancel_interrupted_by_a_stop_is_finished_on_start(
    make_client: Callable[..., Any], settings: Any, tmp_path: Path
) -> None:
    reset_world()
    backends = {"fake": ClusterFake}
    async with make_client(backends) as (client, _):
        job = await submit(client, name="victim", spec="hang")
        await wait_state(client, job["id"], "running")
    sql(settings, f"UPDATE job SET state='cancelling', reason='stop it' WHERE id={job['id']}")
    async with make_client(backends) as (client, _):
        done = await wait_state(client, job["id"], "cancelled")
        assert done["reason"] == "stop it"
