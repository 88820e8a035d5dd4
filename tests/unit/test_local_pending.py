"""The local backend's queue of jobs waiting for cores and memory."""

from __future__ import annotations

from pathlib import Path

from gantry.backends.base import JobSubmission
from gantry.backends.local.limits import Request
from gantry.backends.local.pending import PendingQueue, Queued

ONE_CORE = Request(cores=1, memory=0, walltime=None)


def queued(job_id: int, priority: int = 0, attempt: int = 1) -> Queued:
    job = JobSubmission(
        job_id=job_id,
        attempt=attempt,
        name=f"job{job_id}",
        spec="true\n",
        options={},
        working_dir=Path("/"),
        env={},
        priority=priority,
    )
    return Queued(job, ONE_CORE)


def drain(queue: PendingQueue) -> list[str]:
    keys = []
    while (item := queue.pop()) is not None:
        keys.append(item.job.key)
    return keys


def test_highest_priority_first_then_lowest_job_id() -> None:
    queue = PendingQueue()
    for item in [queued(5), queued(3, priority=1), queued(1), queued(4, priority=1), queued(2)]:
        queue.push(item)
    assert drain(queue) == ["3.1", "4.1", "1.1", "2.1", "5.1"]


def test_negative_priority_goes_last() -> None:
    queue = PendingQueue()
    queue.push(queued(1, priority=-1))
    queue.push(queued(2))
    assert drain(queue) == ["2.1", "1.1"]


def test_peek_does_not_take() -> None:
    queue = PendingQueue()
    queue.push(queued(1))
    item = queue.peek()
    assert item is not None and item.job.key == "1.1"
    assert len(queue) == 1 and "1.1" in queue
    assert queue.pop() is item
    assert queue.peek() is None and queue.pop() is None and len(queue) == 0


def test_removed_jobs_are_skipped() -> None:
    queue = PendingQueue()
    for job_id in (1, 2, 3):
        queue.push(queued(job_id))
    removed = queue.remove("1.1")
    assert removed is not None and removed.job.key == "1.1"
    assert queue.remove("1.1") is None
    assert queue.remove("9.1") is None
    assert "1.1" not in queue and len(queue) == 2
    assert drain(queue) == ["2.1", "3.1"]


def test_a_key_pushed_again_after_removal_keeps_its_new_place() -> None:
    queue = PendingQueue()
    queue.push(queued(1))
    queue.push(queued(2))
    queue.remove("1.1")
    queue.push(queued(1, priority=-5))  # back, now at the end
    assert drain(queue) == ["2.1", "1.1"]
