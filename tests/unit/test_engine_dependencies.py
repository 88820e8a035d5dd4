"""Dependency gating and retries, on the in-memory store with a scripted backend."""

from __future__ import annotations

import time
from pathlib import Path

from gantry.backends.base import BackendStatus
from tests.unit.engine_harness import ChainingBackend, Harness, job, running, wait_for


async def test_a_job_runs_through_its_states_and_every_change_is_an_event(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        (job_id,) = await h.submit(job("one"))
        await wait_for(lambda: len(h.backend.submitted) == 1)
        sub = h.backend.submitted[0]
        assert (sub.job_id, sub.attempt, sub.key) == (job_id, 1, f"{job_id}.1")
        h.backend.report(f"ref-{job_id}.1", BackendStatus.RUNNING)
        h.backend.report(f"ref-{job_id}.1", BackendStatus.COMPLETED, exit_code=0)
        await h.settled()
        assert h.state(job_id) == "completed"
        assert h.states_seen(job_id) == ["queued", "submitted", "running", "completed"]
        assert h.store.rows[job_id]["backend_ref"] == f"ref-{job_id}.1"
        assert not h.engine.is_active(job_id)


async def test_a_dependent_waits_until_its_dependency_completed(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        (first,) = await h.submit(job("first"))
        (second,) = await h.submit(job("second", after_ids=[first]))
        await wait_for(lambda: len(h.backend.submitted) == 1)
        await h.settled()
        assert [s.job_id for s in h.backend.submitted] == [first]
        assert h.state(second) == "queued"
        h.backend.report(f"ref-{first}.1", BackendStatus.COMPLETED, exit_code=0)
        await wait_for(lambda: len(h.backend.submitted) == 2)
        assert h.backend.submitted[1].job_id == second
        assert h.backend.dependencies[f"ref-{second}.1"] == []


async def test_a_failed_dependency_cancels_its_dependents_naming_it(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        first, second, third = await h.submit(
            job("first"), job("second", after_new=[0]), job("third", after_new=[1])
        )
        await wait_for(lambda: len(h.backend.submitted) == 1)
        h.backend.report(f"ref-{first}.1", BackendStatus.FAILED, exit_code=3)
        await h.settled()
        assert h.state(first) == "failed"
        assert h.reason(first) == "exited 3"
        assert h.state(second) == "cancelled"
        assert h.reason(second) == f"dependency {first} (first) failed"
        assert h.state(third) == "cancelled"
        assert h.reason(third) == f"dependency {second} (second) cancelled"
        assert len(h.backend.submitted) == 1


async def test_a_dependency_that_already_ended_badly_cancels_a_new_job(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.backend.hold_reason = "waiting for a licence"  # never handed over
        (first,) = await h.submit(job("first"))
        await h.settled()
        assert await h.engine.cancel(first, "not needed") == "cancelled"
        (late,) = await h.submit(job("late", after_ids=[first]))
        await h.settled()
        assert h.state(late) == "cancelled"
        assert h.reason(late) == f"dependency {first} (first) cancelled"
        assert h.backend.submitted == []
        assert [s.job_id for s in h.backend.holds] == [first]


async def test_a_chaining_backend_gets_dependents_with_the_refs_at_once(tmp_path: Path) -> None:
    async with running(tmp_path, kinds=[ChainingBackend]) as h:
        chain = h.backends["chaining"]
        first, second = await h.submit(
            job("first", backend="chaining"), job("second", backend="chaining", after_new=[0])
        )
        await wait_for(lambda: len(chain.submitted) == 2)
        assert [s.job_id for s in chain.submitted] == [first, second]
        assert chain.dependencies[f"ref-{second}.1"] == [f"ref-{first}.1"]


async def test_retries_back_off_doubling_then_the_job_fails(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        (job_id,) = await h.submit(job("flaky", max_retries=2, retry_delay=0.05))
        dispatched_at: list[float] = []
        for attempt in (1, 2, 3):
            await wait_for(lambda a=attempt: len(h.backend.submitted) == a)  # type: ignore[misc]
            dispatched_at.append(time.monotonic())
            assert h.backend.submitted[-1].attempt == attempt
            assert h.backend.submitted[-1].env["GANTRY_ATTEMPT"] == str(attempt)
            h.backend.report(f"ref-{job_id}.{attempt}", BackendStatus.FAILED, exit_code=1)
        await h.settled()
        assert h.state(job_id) == "failed"
        assert h.store.rows[job_id]["attempt"] == 3
        messages = [e["message"] for e in h.store.events_of(job_id) if e["to_state"] == "queued"]
        assert messages[1:] == [
            "attempt 1 failed (exited 1); retry 1 of 2 in 0.05 s",
            "attempt 2 failed (exited 1); retry 2 of 2 in 0.1 s",
        ]
        assert dispatched_at[1] - dispatched_at[0] >= 0.05
        assert dispatched_at[2] - dispatched_at[1] >= 0.1
        assert len(h.backend.submitted) == 3


async def retried_once(h: Harness, max_retries: int) -> int:
    """A job whose first attempt failed and whose second is submitted."""
    (job_id,) = await h.submit(job("flaky", max_retries=max_retries, retry_delay=0.01))
    await wait_for(lambda: len(h.backend.submitted) == 1)
    h.backend.report(f"ref-{job_id}.1", BackendStatus.FAILED, exit_code=1)
    await wait_for(lambda: len(h.backend.submitted) == 2)
    return job_id


async def test_a_completed_retry_needs_no_more_attempts(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        job_id = await retried_once(h, max_retries=5)
        h.backend.report(f"ref-{job_id}.2", BackendStatus.COMPLETED, exit_code=0)
        await h.settled()
        assert h.state(job_id) == "completed"
        assert len(h.backend.submitted) == 2


async def test_a_report_for_an_old_attempt_ref_changes_nothing(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        job_id = await retried_once(h, max_retries=1)
        h.backend.report(f"ref-{job_id}.1", BackendStatus.COMPLETED, exit_code=0)
        await h.settled()
        assert h.state(job_id) == "submitted"
