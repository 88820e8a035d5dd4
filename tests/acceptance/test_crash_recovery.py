"""kill -9 the real server while jobs are queued, running and finished; restart
it: every job ends in exactly one correct terminal state, none runs twice,
none is lost. Jobs are real local processes under their supervisors."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.server import ServerProcess

TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path, GANTRY_BACKEND__LOCAL__MAX_CORES="2")
    proc.start()
    yield proc
    proc.stop()


def submit(client: httpx.Client, name: str, script: str, **extra: Any) -> int:
    response = client.post("/api/v1/jobs", json={"name": name, "spec": script, **extra})
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def wait_all(client: httpx.Client, ids: list[int], timeout: float = 90) -> dict[int, Any]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = {i: client.get(f"/api/v1/jobs/{i}").json() for i in ids}
        if all(j["state"] in TERMINAL for j in jobs.values()):
            return jobs
        if time.monotonic() > deadline:
            pending = {i: j["state"] for i, j in jobs.items() if j["state"] not in TERMINAL}
            raise AssertionError(f"jobs not ended after {timeout} s: {pending}")
        time.sleep(0.1)


def wait_state(client: httpx.Client, job_id: int, state: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while client.get(f"/api/v1/jobs/{job_id}").json()["state"] != state:
        assert time.monotonic() < deadline, f"job {job_id} never reached {state}"
        time.sleep(0.05)


def test_kill_9_loses_nothing_and_runs_nothing_twice(server: ServerProcess, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    mark = f'echo "$GANTRY_JOB_ID $GANTRY_ATTEMPT" >> {marks}'
    with server.client() as client:
        finished = submit(client, "finished", f"{mark}")
        wait_state(client, finished, "completed")
        survivor = submit(client, "survivor", f"{mark}; sleep 4")
        ends_while_down = submit(client, "ends_while_down", f"{mark}; sleep 1; exit 7")
        wait_state(client, survivor, "running")
        wait_state(client, ends_while_down, "running")
        waits_for_cores = submit(client, "waits_for_cores", f"{mark}")
        dependent = submit(client, "dependent", f"{mark}", depends_on=[survivor])
        doomed = submit(client, "doomed", f"{mark}", depends_on=[ends_while_down])
        batch = client.post(
            "/api/v1/jobs/batch",
            json={"jobs": [{"name": f"burst_{i}", "spec": mark} for i in range(40)]},
        )
        assert batch.status_code == 201
        burst = [j["id"] for j in batch.json()["jobs"]]
    server.kill()
    time.sleep(2.5)  # ends_while_down exits 7 while no server runs
    server.start()
    everything = [finished, survivor, ends_while_down, waits_for_cores, dependent, doomed, *burst]
    with server.client() as client:
        jobs = wait_all(client, everything)
        expected = {
            finished: "completed",
            survivor: "completed",
            ends_while_down: "failed",
            waits_for_cores: "completed",
            dependent: "completed",
            doomed: "cancelled",
        }
        expected.update({i: "completed" for i in burst})
        assert {i: j["state"] for i, j in jobs.items()} == expected
        assert jobs[ends_while_down]["exit_code"] == 7
        assert "dependency" in jobs[doomed]["reason"]
        for job_id in everything:
            events = client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
            ends = [e for e in events if e["to_state"] in TERMINAL]
            assert len(ends) == 1 and ends[0]["to_state"] == jobs[job_id]["state"], events
    runs = Counter(int(line.split()[0]) for line in marks.read_text().splitlines())
    ran = {i for i in everything if i != doomed}
    assert set(runs) == ran, "a job was lost"
    assert max(runs.values()) == 1, f"ran twice: {[i for i, n in runs.items() if n > 1]}"


def test_sigterm_stops_the_server_and_leaves_running_jobs_running(
    server: ServerProcess, tmp_path: Path
) -> None:
    done = tmp_path / "done"
    with server.client() as client:
        job = submit(client, "outlives", f"sleep 2; touch {done}")
        wait_state(client, job, "running")
    started = time.monotonic()
    assert server.stop() in (0, -15)
    assert time.monotonic() - started < 10, "graceful shutdown took too long"
    time.sleep(2.5)
    assert done.exists(), "the job was killed with the server"
    server.start()
    with server.client() as client:
        final = wait_all(client, [job])[job]
        assert final["state"] == "completed" and final["attempt"] == 1


DEMO_DEVICES = Path(__file__).resolve().parents[2] / "app" / "instruments" / "demo-devices.toml"


def test_kill_9_with_slurm_and_instrument_jobs_in_flight(tmp_path: Path) -> None:
    """A Slurm job runs on through the crash and is re-adopted; an instrument
    job cannot resume mid-method, so it fails saying so and keeps its data."""
    from tests.conftest import need
    from tests.integration.test_backend_suite import SLURM_HOW, slurm_running

    need(slurm_running(), SLURM_HOW)
    server = ServerProcess(tmp_path, GANTRY_DEVICES_FILE=str(DEMO_DEVICES))
    server.start()
    try:
        work = tmp_path / "work"
        work.mkdir()
        with server.client() as client:
            on_slurm = submit(
                client, "on_slurm", "sleep 4; echo done", backend="slurm", working_dir=str(work)
            )
            client.post("/api/v1/pipelines/pip-counter-1/load", json={"sample": "S1"})
            assert client.post("/api/v1/pipelines/pip-counter-1/ready").status_code == 200
            counting = client.post(
                "/api/v1/jobs",
                json={
                    "name": "counting",
                    "payload": {
                        "sample": {"name": "S1"},
                        "method": [
                            {
                                "component_role": "counter",
                                "technique_name": "count",
                                "max_duration": 30,
                                "sampling_interval": 0.1,
                            }
                        ],
                    },
                },
            )
            assert counting.status_code == 201, counting.text
            counting_id = counting.json()["id"]
            after_slurm = submit(client, "after_slurm", "true", depends_on=[on_slurm])
            wait_state(client, on_slurm, "running")
            wait_state(client, counting_id, "running")
            time.sleep(1.0)  # some samples stored
        server.kill()
        server.start()
        with server.client() as client:
            jobs = wait_all(client, [on_slurm, counting_id, after_slurm])
            assert jobs[on_slurm]["state"] == "completed" and jobs[on_slurm]["attempt"] == 1
            assert jobs[after_slurm]["state"] == "completed"
            assert jobs[counting_id]["state"] == "failed"
            assert "server stopped" in (jobs[counting_id]["reason"] or "")
            data = client.get(f"/api/v1/jobs/{counting_id}/data", params={"format": "csv"})
            assert data.status_code == 200 and len(data.text.splitlines()) > 5
            pipeline = client.get("/api/v1/pipelines/pip-counter-1").json()
            assert pipeline["job_id"] is None, "the pipeline was not freed"
    finally:
        server.stop()


def test_kill_9_with_sge_jobs_in_flight(tmp_path: Path) -> None:
    """An SGE job runs on through the crash and is re-adopted by its ref; its
    dependent (held by -hold_jid) runs once after it; nothing is submitted twice."""
    from tests.conftest import need
    from tests.integration.test_backend_suite import SGE_HOW, sge_running

    need(sge_running(), SGE_HOW)
    server = ServerProcess(tmp_path, GANTRY_BACKEND__SGE__POLL_INTERVAL="0.3")
    server.start()
    try:
        work = tmp_path / "work"
        work.mkdir()
        count = work / "count"
        with server.client() as client:
            first = submit(client, "first", f"sleep 3; echo 1 >> {count}", backend="sge",
                           working_dir=str(work))  # fmt: skip
            second = submit(client, "second", f"echo 2 >> {count}", backend="sge",
                            working_dir=str(work), depends_on=[first])  # fmt: skip
            wait_state(client, first, "running")
        server.kill()
        server.start()
        with server.client() as client:
            jobs = wait_all(client, [first, second])
            assert [jobs[i]["state"] for i in (first, second)] == ["completed", "completed"]
            assert jobs[first]["attempt"] == 1 and jobs[second]["attempt"] == 1
        assert count.read_text() == "1\n2\n"
    finally:
        server.stop()
