"""Array jobs on the local backend, through the real server (SQLite and PostgreSQL).

Tasks run as real processes; what they saw and when is read back from
marker files they write themselves, never from timing in the test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.fakes import FakeBackend
from tests.integration.test_api_jobs import API, submit, wait_state


@pytest.fixture
def local(make_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    from gantry.backends.local import LocalBackend

    # More cores than the %K limits below, so the limit is what binds.
    monkeypatch.setenv("GANTRY_BACKEND__LOCAL__MAX_CORES", "16")
    backends = {"local": LocalBackend, "fake": FakeBackend}
    return lambda: make_client(backends, default_backend="local", max_array_tasks=1000)


async def tasks_of(client: httpx.AsyncClient, job_id: int) -> dict[int, dict[str, Any]]:
    page = (await client.get(f"{API}/jobs/{job_id}/tasks", params={"limit": 1000})).json()
    return {task["index"]: task for task in page["items"]}


async def test_at_most_k_tasks_run_at_once_and_each_sees_its_index(
    local: Callable[..., Any], tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = (
        f'date +%s.%N > {marks}/"$GANTRY_ARRAY_INDEX".start; sleep 0.05; '
        f'date +%s.%N > {marks}/"$GANTRY_ARRAY_INDEX".end; echo "task $GANTRY_ARRAY_INDEX"'
    )
    async with local() as (client, app):
        job = await submit(client, spec=spec, array="0-99%5", working_dir=str(tmp_path))
        assert job["array"] == "0-99%5"
        done = await wait_state(client, job["id"], "completed", "failed", timeout=120)
        shown = (await client.get(f"{API}/jobs/{job['id']}")).json()
        tasks = await tasks_of(client, job["id"])
    assert done["state"] == "completed", done["reason"]
    assert done["reason"] == "all 100 tasks completed"
    assert shown["tasks"] == {
        "count": 100,
        "limit": 5,
        "by_state": {"pending": 0, "completed": 100},
    }
    assert sorted(tasks) == list(range(100))
    assert all(t["exit_code"] == 0 and t["accounting"]["wall_seconds"] >= 0 for t in tasks.values())
    # The array's own accounting sums its tasks' (what /stats adds up).
    user = sum(t["accounting"]["cpu_user_seconds"] for t in tasks.values())
    assert shown["accounting"]["cpu_user_seconds"] == pytest.approx(user)
    peaks = [t["accounting"]["max_rss_bytes"] for t in tasks.values()]
    assert shown["accounting"]["max_rss_bytes"] == max(peaks)
    spans = [
        (float((marks / f"{i}.start").read_text()), float((marks / f"{i}.end").read_text()))
        for i in range(100)
    ]
    # The most tasks alive at any one moment, from their own start and end marks.
    moments = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    alive = most = 0
    for _, step in moments:
        alive += step
        most = max(most, alive)
    assert 2 <= most <= 5
    log = app.state.settings.data_dir / "logs" / f"{job['id']}_42.stdout"
    assert log.read_text() == "task 42\n"


async def test_a_failed_task_fails_the_array_and_its_afterok_dependents(
    local: Callable[..., Any], tmp_path: Path
) -> None:
    async with local() as (client, _):
        array = await submit(
            client, name="sweep", spec='[ "$GANTRY_ARRAY_INDEX" != 2 ]', array="0-3",
            working_dir=str(tmp_path),
        )  # fmt: skip
        after = await submit(client, spec="true", depends_on=[array["id"]])
        failed = await wait_state(client, array["id"], "failed", "completed", timeout=30)
        cancelled = await wait_state(client, after["id"], "cancelled", "completed", timeout=30)
        tasks = await tasks_of(client, array["id"])
    assert failed["state"] == "failed"
    assert failed["reason"] == "1 of 4 tasks failed (first: task 2: exited with code 1)"
    assert cancelled["reason"] == f"dependency {array['id']} (sweep) failed"
    assert {i: t["state"] for i, t in tasks.items()} == {
        0: "completed", 1: "completed", 2: "failed", 3: "completed"
    }  # fmt: skip
    assert tasks[2]["exit_code"] == 1


async def test_afterok_on_an_array_waits_for_all_its_tasks(
    local: Callable[..., Any], tmp_path: Path
) -> None:
    order = tmp_path / "order"
    async with local() as (client, _):
        array = await submit(
            client, spec=f'sleep 0.$GANTRY_ARRAY_INDEX; echo task >> {order}', array="1-4",
            working_dir=str(tmp_path),
        )  # fmt: skip
        after = await submit(client, spec=f"echo after >> {order}", depends_on=[array["id"]])
        await wait_state(client, after["id"], "completed", "cancelled", timeout=30)
    assert order.read_text() == "task\n" * 4 + "after\n"


async def test_cancel_one_task_leaves_the_others(local: Callable[..., Any], tmp_path: Path) -> None:
    spec = 'if [ "$GANTRY_ARRAY_INDEX" = 1 ]; then sleep 60; else sleep 1; fi'
    async with local() as (client, _):
        job = await submit(client, spec=spec, array="0-2", working_dir=str(tmp_path))
        with anyio.fail_after(30):
            while 1 not in await tasks_of(client, job["id"]):
                await anyio.sleep(0.02)
        answer = await client.post(f"{API}/jobs/{job['id']}/tasks/1/cancel")
        assert answer.status_code == 202, answer.text
        assert answer.json() == {"id": job["id"], "index": 1, "state": "cancelling"}
        done = await wait_state(client, job["id"], "failed", "completed", timeout=30)
        tasks = await tasks_of(client, job["id"])
        again = await client.post(f"{API}/jobs/{job['id']}/tasks/1/cancel")
        missing = await client.post(f"{API}/jobs/{job['id']}/tasks/7/cancel")
    assert {i: t["state"] for i, t in tasks.items()} == {
        0: "completed", 1: "cancelled", 2: "completed"
    }  # fmt: skip
    assert done["reason"] == "1 of 3 tasks cancelled"
    assert again.status_code == 409
    assert missing.status_code == 409  # the array ended: nothing left to cancel


async def test_cancel_the_whole_array(local: Callable[..., Any], tmp_path: Path) -> None:
    async with local() as (client, _):
        job = await submit(client, spec="sleep 60", array="0-9%2", working_dir=str(tmp_path))
        await wait_state(client, job["id"], "running", timeout=30)
        missing = await client.post(f"{API}/jobs/{job['id']}/tasks/10/cancel")
        assert (await client.post(f"{API}/jobs/{job['id']}/cancel")).status_code == 202
        done = await wait_state(client, job["id"], "cancelled", "failed", timeout=30)
        shown = (await client.get(f"{API}/jobs/{job['id']}")).json()
    assert missing.status_code == 404 and "its array is 0-9%2" in missing.json()["detail"]
    assert done["reason"] == "cancelled by request"
    assert shown["tasks"]["by_state"] == {"pending": 0, "cancelled": 10}


async def test_a_restarted_server_runs_every_task_exactly_once(
    local: Callable[..., Any], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    spec = f'echo "$GANTRY_ARRAY_INDEX" >> {runs}; sleep 1'
    async with local() as (client, _):
        job = await submit(client, spec=spec, array="0-5%2", working_dir=str(tmp_path))
        await wait_state(client, job["id"], "running", timeout=30)
    async with local() as (client, _):  # two tasks ran on meanwhile, four never started
        done = await wait_state(client, job["id"], "completed", "failed", timeout=60)
    assert done["state"] == "completed", done["reason"]
    assert sorted(runs.read_text().split()) == [str(i) for i in range(6)]


@pytest.mark.parametrize(
    ("array", "says"),
    [
        ("0-9:0", "array '0-9:0': '0-9:0' has a step of 0: a step is 1 or more"),
        ("", "array '': the spec is empty"),
        ("1,x", "array '1,x': 'x' is not an index or range"),
        ("0-1000", "array '0-1000': 1001 tasks is more than the limit of 1000"),
    ],
)
async def test_a_bad_array_is_refused_quoting_it(
    local: Callable[..., Any], array: str, says: str
) -> None:
    async with local() as (client, _):
        answer = await client.post(f"{API}/jobs", json={"spec": "true", "array": array})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "array"] and problem["msg"].startswith(says)


async def test_an_array_on_a_backend_without_arrays_is_refused_naming_it(
    local: Callable[..., Any],
) -> None:
    async with local() as (client, _):
        answer = await client.post(
            f"{API}/jobs", json={"spec": "true", "array": "0-3", "backend": "fake"}
        )
        retried = await client.post(
            f"{API}/jobs", json={"spec": "true", "array": "0-3", "max_retries": 2}
        )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["msg"] == (
        "backend 'fake' cannot run arrays: submit it to one that can (local)"
    )
    assert retried.status_code == 422 and "max_retries 0" in retried.text


# --- the same on a real Slurm cluster: one sbatch --array, tasks polled in bulk ----------


@pytest.fixture
def slurm(make_client: Callable[..., Any]) -> Callable[..., Any]:
    from gantry.backends.slurm import SlurmBackend
    from tests.conftest import need
    from tests.integration.test_backend_suite import SLURM_HOW, slurm_running

    need(slurm_running(), SLURM_HOW)
    return lambda: make_client({"slurm": SlurmBackend}, default_backend="slurm")


def most_at_once(marks: Path, indices: range) -> int:
    spans = [
        (float((marks / f"{i}.start").read_text()), float((marks / f"{i}.end").read_text()))
        for i in indices
    ]
    moments = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    alive = most = 0
    for _, step in moments:
        alive += step
        most = max(most, alive)
    return most


@pytest.mark.slurm
async def test_slurm_runs_an_array_with_its_limit_and_each_tasks_accounting(
    slurm: Callable[..., Any], tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    spec = (
        f'date +%s.%N > {marks}/"$GANTRY_ARRAY_INDEX".start; sleep 0.3; '
        f'[ "$SLURM_ARRAY_TASK_ID" = "$GANTRY_ARRAY_INDEX" ] && '
        f'date +%s.%N > {marks}/"$GANTRY_ARRAY_INDEX".end'
    )
    async with slurm() as (client, app):
        job = await submit(client, spec=spec, array="0-99%5", working_dir=str(tmp_path))
        done = await wait_state(client, job["id"], "completed", "failed", timeout=600)
        tasks = await tasks_of(client, job["id"])
        commands = app.state.engine.backends["slurm"].commands
    assert done["state"] == "completed", done["reason"]
    assert sorted(tasks) == list(range(100))
    assert 1 <= most_at_once(marks, range(100)) <= 5
    assert commands.counts["sbatch"] == 1
    measured = [t["accounting"] for t in tasks.values() if t["accounting"]]
    assert measured and all(a["cpu_user_seconds"] is not None for a in measured)


@pytest.mark.slurm
async def test_slurm_a_failed_task_fails_the_array_and_cancel_one_task_leaves_the_rest(
    slurm: Callable[..., Any], tmp_path: Path
) -> None:
    async with slurm() as (client, _):
        failing = await submit(
            client, name="sweep", spec='[ "$GANTRY_ARRAY_INDEX" != 2 ]', array="0-3",
            working_dir=str(tmp_path),
        )  # fmt: skip
        after = await submit(client, spec="true", depends_on=[failing["id"]])
        spec = 'if [ "$GANTRY_ARRAY_INDEX" = 1 ]; then sleep 300; else sleep 2; fi'
        mixed = await submit(client, spec=spec, array="0-2", working_dir=str(tmp_path))
        with anyio.fail_after(120):
            while (await tasks_of(client, mixed["id"])).get(1, {}).get("state") != "running":
                await anyio.sleep(0.2)
        answer = await client.post(f"{API}/jobs/{mixed['id']}/tasks/1/cancel")
        assert answer.status_code == 202, answer.text
        failed = await wait_state(client, failing["id"], "failed", "completed", timeout=120)
        cancelled = await wait_state(client, after["id"], "cancelled", "completed", timeout=120)
        ended = await wait_state(client, mixed["id"], "failed", "completed", timeout=120)
        tasks = await tasks_of(client, mixed["id"])
    assert failed["reason"].startswith("1 of 4 tasks failed (first: task 2: ")
    assert cancelled["state"] == "cancelled"
    assert {i: t["state"] for i, t in tasks.items()} == {
        0: "completed", 1: "cancelled", 2: "completed"
    }  # fmt: skip
    assert ended["reason"] == "1 of 3 tasks cancelled"
