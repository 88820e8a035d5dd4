"""What backends do to the engine: early reports, refusals, and plug-in code that raises."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.backends.base import BackendError, BackendStatus
from tests.unit.engine_harness import ScriptedBackend, job, running, wait_for


async def test_a_report_that_arrives_before_submit_returns_is_applied(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.backend.report_during_submit = BackendStatus.COMPLETED
        (job_id,) = await h.submit(job("fast"))
        await wait_for(lambda: not h.engine.is_active(job_id))
        await h.settled()
        assert h.state(job_id) == "completed"
        assert h.states_seen(job_id) == ["queued", "submitted", "completed"]


async def test_a_refused_job_fails_with_the_backends_reason(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.backend.fail_in["submit"] = BackendError("no such partition")
        (job_id,) = await h.submit(job("bad"))
        await wait_for(lambda: not h.engine.is_active(job_id))
        await h.settled()
        assert h.state(job_id) == "failed"
        assert h.reason(job_id) == "scripted refused the job: no such partition"
        assert h.store.rows[job_id]["in_flight"] is False


@pytest.mark.parametrize(
    ("method", "reason"),
    [
        ("hold", "backend scripted crashed in hold: RuntimeError: boom"),
        ("logs", "backend scripted crashed in logs: RuntimeError: boom"),
        ("submit", "scripted failed to submit: RuntimeError: boom"),
    ],
)
async def test_plugin_code_that_raises_fails_the_job_not_the_engine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, method: str, reason: str
) -> None:
    async with running(tmp_path) as h:
        h.backend.fail_in[method] = RuntimeError("boom")
        (job_id,) = await h.submit(job("victim"))
        await wait_for(lambda: not h.engine.is_active(job_id))
        await h.settled()
        assert h.state(job_id) == "failed"
        assert h.reason(job_id) == reason
        assert any("backend scripted crashed" in r.getMessage() for r in caplog.records)
        # The engine still works: the next job goes through.
        del h.backend.fail_in[method]
        (next_id,) = await h.submit(job("next"))
        await wait_for(lambda: [s.job_id for s in h.backend.submitted] == [next_id])


async def test_a_held_job_is_checked_with_the_submission_it_is_then_given(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as h:
        h.backend.hold_reason = "waiting"
        (job_id,) = await h.submit(job("held"))
        await h.settled()
        h.backend.hold_reason = None
        h.backend.context.wake()
        await wait_for(lambda: len(h.backend.submitted) == 1)
        assert [s.attempt for s in h.backend.holds] == [1, 1]
        assert h.backend.holds[0] is h.backend.holds[1] is h.backend.submitted[0]
        assert h.state(job_id) in ("queued", "submitted")


async def test_a_backend_whose_task_crashes_is_reported_and_the_engine_stays_up(
    tmp_path: Path,
) -> None:
    def crash(backend: ScriptedBackend) -> None:
        backend.run_crash = RuntimeError("poller died")

    async with running(tmp_path, setup=crash) as h:
        await wait_for(lambda: "scripted" in h.engine.backend_errors)
        assert h.engine.backend_errors["scripted"] == "its task group crashed; see the server log"
        (job_id,) = await h.submit(job("still"))
        await wait_for(lambda: len(h.backend.submitted) == 1)
        assert h.backend.submitted[0].job_id == job_id


async def test_a_log_path_survives_a_raising_logs(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        h.backend.fail_in["logs"] = RuntimeError("boom")
        assert h.engine.log_path(7, "scripted", 1, "stdout") == tmp_path / "logs" / "7.stdout"
