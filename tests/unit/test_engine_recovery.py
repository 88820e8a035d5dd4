"""Restart on the same store: in-doubt jobs are settled through ``lookup``, never run twice."""

from __future__ import annotations

from pathlib import Path

import anyio

from gantry.backends.base import BackendStatus, StatusReport
from gantry.jobs.store.memory import MemoryStore
from tests.unit.engine_harness import ScriptedBackend, job, running, wait_for


async def crash_inside_submit(tmp_path: Path) -> tuple[MemoryStore, int]:
    """A job whose dispatch intent was committed, then the server died in ``submit``."""
    store = MemoryStore()
    async with running(tmp_path, store=store) as h:
        h.backend.submit_gate = anyio.Event()  # submit never returns
        (job_id,) = await h.submit(job("in-doubt"))
        await wait_for(lambda: store.rows[job_id]["in_flight"] is True)
    assert store.rows[job_id]["attempt"] == 1
    assert store.rows[job_id]["backend_ref"] is None
    return store, job_id


def knows(key: str, ref: str) -> object:
    def setup(backend: ScriptedBackend) -> None:
        backend.known[key] = ref

    return setup


async def test_an_in_doubt_job_the_backend_got_is_adopted_not_resubmitted(
    tmp_path: Path,
) -> None:
    store, job_id = await crash_inside_submit(tmp_path)
    async with running(tmp_path, store=store, setup=knows(f"{job_id}.1", "ref-x")) as h:
        await h.settled()
        assert h.backend.submitted == []
        assert h.state(job_id) == "submitted"
        assert h.store.rows[job_id]["backend_ref"] == "ref-x"
        assert h.store.rows[job_id]["in_flight"] is False
        assert (
            h.store.events_of(job_id)[-1]["message"] == "found on scripted as ref-x after a restart"
        )
        h.backend.report("ref-x", BackendStatus.COMPLETED, exit_code=0)
        await h.settled()
        assert h.state(job_id) == "completed"


async def test_an_in_doubt_job_the_backend_never_got_runs_as_the_next_attempt(
    tmp_path: Path,
) -> None:
    store, job_id = await crash_inside_submit(tmp_path)
    async with running(tmp_path, store=store) as h:
        await wait_for(lambda: len(h.backend.submitted) == 1)
        assert h.backend.submitted[0].key == f"{job_id}.2"


async def test_a_cancel_asked_for_before_the_crash_ends_the_in_doubt_job(tmp_path: Path) -> None:
    store, job_id = await crash_inside_submit(tmp_path)
    store.rows[job_id].update(state="cancelling", reason="stop")
    async with running(tmp_path, store=store) as h:
        await h.settled()
        assert h.state(job_id) == "cancelled"
        assert h.reason(job_id) == "stop"
        assert h.backend.submitted == []


async def test_a_lookup_that_raises_keeps_the_job_waiting_and_the_server_up(
    tmp_path: Path,
) -> None:
    store, job_id = await crash_inside_submit(tmp_path)

    def broken(backend: ScriptedBackend) -> None:
        backend.fail_in["lookup"] = RuntimeError("scheduler down")

    async with running(tmp_path, store=store, setup=broken) as h:
        await h.settled()
        assert h.backend.submitted == []
        assert h.state(job_id) == "queued"
        assert "scheduler down" in h.engine.backend_errors["scripted"]


async def test_jobs_that_ended_while_the_server_was_down_get_their_outcome(
    tmp_path: Path,
) -> None:
    store = MemoryStore()
    async with running(tmp_path, store=store) as first:
        ids = await first.submit(job("done"), job("gone"), job("dependent", after_new=[1]))
        await wait_for(lambda: len(first.backend.submitted) == 2)
    done, gone, dependent = ids

    def outcomes(backend: ScriptedBackend) -> None:
        backend.statuses[f"ref-{done}.1"] = StatusReport(BackendStatus.COMPLETED, exit_code=0)
        backend.statuses[f"ref-{gone}.1"] = StatusReport(BackendStatus.FAILED, exit_code=9)

    async with running(tmp_path, store=store, setup=outcomes) as h:
        await h.settled()
        assert sorted(h.backend.adopted) == [
            (f"{done}.1", f"ref-{done}.1"),
            (f"{gone}.1", f"ref-{gone}.1"),
        ]
        assert h.state(done) == "completed"
        assert h.state(gone) == "failed"
        assert h.state(dependent) == "cancelled"
        assert h.reason(dependent) == f"dependency {gone} (gone) failed"
