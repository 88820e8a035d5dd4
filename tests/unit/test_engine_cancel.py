"""Cancellation while queued, while the submit is in flight, while running; idempotent."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from gantry.backends.base import BackendError, BackendStatus
from gantry.jobs.engine import JobAlreadyEnded, JobNotFound
from tests.unit.engine_harness import job, running, wait_for


async def test_cancel_while_queued_ends_it_at_once_and_never_submits(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.backend.hold_reason = "waiting for a ready pipeline"
        (job_id,) = await h.submit(job("held"))
        await h.settled()
        assert h.reason(job_id) == "waiting for a ready pipeline"
        assert await h.engine.cancel(job_id, "changed my mind") == "cancelled"
        await h.settled()
        assert h.state(job_id) == "cancelled"
        assert h.reason(job_id) == "changed my mind"
        assert h.states_seen(job_id) == ["queued", "cancelling", "cancelled"]
        h.backend.hold_reason = None
        h.backend.context.wake()
        await h.settled()
        assert h.backend.submitted == []
        assert h.backend.cancelled == []


async def test_cancel_while_dispatching_cancels_on_the_backend_once_submit_returns(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as h:
        gate = h.backend.submit_gate = anyio.Event()
        (job_id,) = await h.submit(job("slow"))
        await wait_for(lambda: h.engine.jobs[job_id].dispatching)
        assert await h.engine.cancel(job_id, "stop it") == "cancelling"
        await h.settled()
        assert h.state(job_id) == "cancelling"
        assert h.backend.cancelled == []  # no ref to cancel yet
        gate.set()
        await wait_for(lambda: h.backend.cancelled == [f"ref-{job_id}.1"])
        await h.settled()
        assert h.state(job_id) == "cancelling"
        assert h.store.rows[job_id]["backend_ref"] == f"ref-{job_id}.1"
        h.backend.report(f"ref-{job_id}.1", BackendStatus.FAILED, exit_code=143)
        await h.settled()
        assert h.state(job_id) == "cancelled"
        assert h.reason(job_id) == "stop it"


async def test_cancel_while_dispatching_and_then_refused_ends_cancelled(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        gate = h.backend.submit_gate = anyio.Event()
        (job_id,) = await h.submit(job("slow"))
        await wait_for(lambda: h.engine.jobs[job_id].dispatching)
        await h.engine.cancel(job_id, "stop it")
        h.backend.fail_in["submit"] = BackendError("queue closed")
        gate.set()
        await h.settled()
        assert h.state(job_id) == "cancelled"
        assert h.reason(job_id) == "stop it"


async def test_cancel_while_running_waits_for_the_backend(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        (job_id,) = await h.submit(job("long"))
        await wait_for(lambda: len(h.backend.submitted) == 1)
        ref = f"ref-{job_id}.1"
        h.backend.report(ref, BackendStatus.RUNNING)
        await h.settled()
        assert await h.engine.cancel(job_id) == "cancelling"
        await wait_for(lambda: h.backend.cancelled == [ref])
        h.backend.report(ref, BackendStatus.CANCELLED, exit_code=143)
        await h.settled()
        assert h.state(job_id) == "cancelled"
        assert h.reason(job_id) == "cancelled by request"
        assert h.states_seen(job_id) == [
            "queued",
            "submitted",
            "running",
            "cancelling",
            "cancelled",
        ]


async def test_cancel_is_idempotent_and_says_when_it_is_too_late(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        (job_id,) = await h.submit(job("long"))
        await wait_for(lambda: len(h.backend.submitted) == 1)
        ref = f"ref-{job_id}.1"
        assert await h.engine.cancel(job_id, "first") == "cancelling"
        assert await h.engine.cancel(job_id, "second") == "cancelling"
        await h.settled()
        assert h.backend.cancelled == [ref]
        assert h.reason(job_id) == "first"
        h.backend.report(ref, BackendStatus.CANCELLED)
        await h.settled()
        with pytest.raises(JobAlreadyEnded, match="already ended: it is cancelled"):
            await h.engine.cancel(job_id)
        with pytest.raises(JobNotFound, match="job 999 does not exist"):
            await h.engine.cancel(999)


async def test_cancel_of_a_job_ended_before_a_restart_reads_the_store(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        (job_id,) = await h.submit(job("quick"))
        await wait_for(lambda: len(h.backend.submitted) == 1)
        h.backend.report(f"ref-{job_id}.1", BackendStatus.COMPLETED, exit_code=0)
        store = h.store
    async with running(tmp_path, store=store) as again:
        with pytest.raises(JobAlreadyEnded, match="it is completed"):
            await again.engine.cancel(job_id)
