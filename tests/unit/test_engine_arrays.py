"""Array jobs in the engine, on the in-memory store with a scripted backend:
task reports, the derived state, repeats, one task's cancel, and a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.backends.base import Accounting, BackendStatus
from gantry.jobs.errors import TaskNotCancellable, TaskNotFound
from gantry.jobs.store.memory import MemoryStore
from tests.unit.engine_harness import job, running

S = BackendStatus


async def test_an_array_runs_with_its_first_task_and_completes_with_its_last(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as h:
        (array_id,) = await h.submit(job("sweep", array="0-2"))
        await h.settled()
        (handed,) = h.backend.submitted
        assert handed.array is not None and list(handed.array.indices()) == [0, 1, 2]
        ref = f"ref-{handed.key}"
        h.backend.report(ref, S.RUNNING, task=0, started_at=1.0)
        await h.settled()
        assert h.state(array_id) == "running"
        cost = Accounting(cpu_user=1.0, cpu_system=0.5, max_rss=100)
        for index in range(3):
            h.backend.report(ref, S.COMPLETED, task=index, exit_code=0, accounting=cost)
        h.backend.report(ref, S.FAILED, task=1, exit_code=3)  # a repeat: ignored
        await h.settled()
        assert h.state(array_id) == "completed"
        assert h.reason(array_id) == "all 3 tasks completed"
        assert h.states_seen(array_id) == ["queued", "submitted", "running", "completed"]
        assert {i: t["state"] for (j, i), t in h.store.tasks.items()} == {
            0: "completed", 1: "completed", 2: "completed"
        }  # fmt: skip
        row = h.store.rows[array_id]
        assert (row["cpu_user_seconds"], row["cpu_system_seconds"], row["max_rss_bytes"]) == (
            3.0, 1.5, 100
        )  # fmt: skip


async def test_one_failed_task_fails_the_array_and_its_dependents(tmp_path: Path) -> None:
    async with running(tmp_path) as h:
        (array_id,) = await h.submit(job("sweep", array="0-1"))
        await h.settled()
        (dependent,) = await h.submit(job("dependent", after_ids=[array_id]))
        await h.settled()
        ref = f"ref-{h.backend.submitted[0].key}"
        h.backend.report(ref, S.FAILED, task=0, exit_code=2, reason="exited with code 2")
        h.backend.report(ref, S.COMPLETED, task=1, exit_code=0)
        await h.settled()
        assert h.state(array_id) == "failed"
        assert h.reason(array_id) == "1 of 2 tasks failed (first: task 0: exited with code 2)"
        assert h.state(dependent) == "cancelled"
        assert h.reason(dependent) == f"dependency {array_id} (sweep) failed"


async def test_cancel_one_task_goes_to_the_backend_and_bad_indices_are_refused(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as h:
        h.backend.hold_reason = "not yet"
        (array_id,) = await h.submit(job("sweep", array="0-3"))
        with pytest.raises(TaskNotCancellable, match="cancel the whole array"):
            await h.engine.cancel_task(array_id, 1)
        h.backend.hold_reason = None
        h.backend.context.wake()
        await h.settled()
        cancelled: list[tuple[str, int]] = []

        async def cancel_task(ref: str, index: int) -> None:
            cancelled.append((ref, index))

        h.backend.cancel_task = cancel_task  # type: ignore[method-assign]
        assert await h.engine.cancel_task(array_id, 2) == "cancelling"
        ref = h.engine.jobs[array_id].ref
        assert cancelled == [(ref, 2)]
        with pytest.raises(TaskNotFound, match="its array is 0-3"):
            await h.engine.cancel_task(array_id, 9)
        h.backend.report(ref or "", S.CANCELLED, task=2)
        await h.settled()
        with pytest.raises(TaskNotCancellable, match="already ended: it is cancelled"):
            await h.engine.cancel_task(array_id, 2)


async def test_a_restart_keeps_what_tasks_did(tmp_path: Path) -> None:
    store = MemoryStore()
    async with running(tmp_path, store) as h:
        (array_id,) = await h.submit(job("sweep", array="0-2"))
        await h.settled()
        ref = f"ref-{h.backend.submitted[0].key}"
        h.backend.report(ref, S.COMPLETED, task=0, accounting=Accounting(cpu_user=2.0))
        h.backend.report(ref, S.RUNNING, task=1)
        await h.settled()
    async with running(tmp_path, store) as h:
        assert h.backend.adopted == [(h.engine.jobs[array_id].key, ref)]
        progress = h.engine.jobs[array_id].tasks
        assert progress is not None and progress.ended == {0: "completed"}
        assert progress.running == {1}
        h.backend.report(ref, S.COMPLETED, task=0)  # re-reported after the restart: ignored
        h.backend.report(ref, S.COMPLETED, task=1, accounting=Accounting(cpu_user=1.0))
        h.backend.report(ref, S.COMPLETED, task=2)
        await h.settled()
        assert h.state(array_id) == "completed"
        assert store.rows[array_id]["cpu_user_seconds"] == 3.0
