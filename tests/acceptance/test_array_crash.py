"""kill -9 the real server in the middle of an array job; restart it: every
task runs exactly once, the tasks that ended while it was down are recorded,
and the array ends completed. Tasks are real local processes."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.server import ServerProcess


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path, GANTRY_BACKEND__LOCAL__MAX_CORES="4")
    proc.start()
    yield proc
    proc.stop()


def test_kill_9_mid_array_runs_every_task_once(server: ServerProcess, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    spec = f'echo "$GANTRY_ARRAY_INDEX" >> {marks}; sleep 0.$((GANTRY_ARRAY_INDEX % 3 + 5))'
    with server.client() as client:
        answer = client.post(
            "/api/v1/jobs", json={"spec": spec, "array": "0-11%3", "working_dir": str(tmp_path)}
        )
        assert answer.status_code == 201, answer.text
        job_id = answer.json()["id"]
        deadline = time.monotonic() + 30
        while not marks.exists() or len(marks.read_text().split()) < 4:
            assert time.monotonic() < deadline, "the array never got going"
            time.sleep(0.02)
    server.kill()  # mid-array: some tasks ended, some run, most never started
    time.sleep(1)  # the running ones end while no server watches them
    server.start()
    with server.client() as client:
        deadline = time.monotonic() + 60
        while (job := client.get(f"/api/v1/jobs/{job_id}").json())["state"] not in (
            "completed", "failed", "cancelled",
        ):  # fmt: skip
            assert time.monotonic() < deadline, f"array still {job['state']}"
            time.sleep(0.1)
        tasks = client.get(f"/api/v1/jobs/{job_id}/tasks").json()["items"]
    assert job["state"] == "completed", job["reason"]
    assert Counter(marks.read_text().split()) == Counter(str(i) for i in range(12))
    assert [t["index"] for t in tasks] == list(range(12))
    assert all(t["state"] == "completed" and t["exit_code"] == 0 for t in tasks)
    assert job["tasks"]["by_state"] == {"pending": 0, "completed": 12}
    # the tasks that ended before the kill count in the array's accounting too
    user = sum(t["accounting"]["cpu_user_seconds"] for t in tasks)
    assert job["accounting"]["cpu_user_seconds"] == pytest.approx(user)
