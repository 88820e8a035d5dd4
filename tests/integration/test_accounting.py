"""Accounting and memory limits on the local backend, through the real server.

What every backend must do (CPU time and peak memory of a job) is in the
shared suite (test_backend_suite.py); this is what the local backend does
on its own: memory limits it enforces, a later server accounting for a job
it did not start, and the sums of ``/stats`` (on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_api_jobs import API, submit, wait_state

HOG = """python3 -c '
import time
held = bytearray(400 * 1024 * 1024)
for i in range(0, len(held), 4096):
    held[i] = 1
time.sleep(60)
'
"""


@pytest.fixture
def local(make_client: Callable[..., Any]) -> Callable[..., Any]:
    from gantry.backends.local import LocalBackend

    return lambda: make_client({"local": LocalBackend}, default_backend="local")


async def test_a_job_over_its_memory_limit_is_stopped_with_a_reason(
    local: Callable[..., Any], tmp_path: Path
) -> None:
    async with local() as (client, _):
        hog = await submit(client, spec=HOG, options={"memory": "100m"}, working_dir=str(tmp_path))
        within = await submit(
            client, spec="sleep 1", options={"memory": "100m"}, working_dir=str(tmp_path)
        )
        done = await wait_state(client, hog["id"], "failed", "completed", timeout=30)
        fine = await wait_state(client, within["id"], "failed", "completed", timeout=30)
    assert done["state"] == "failed"
    assert done["reason"].startswith("memory limit 100M exceeded: its processes held ")
    assert done["reason"].endswith("; killed")
    assert done["accounting"]["max_rss_bytes"] > 100 * 1024 * 1024
    assert fine["state"] == "completed"


async def test_a_later_server_accounts_for_a_job_it_did_not_start(
    local: Callable[..., Any], tmp_path: Path
) -> None:
    burn = "python3 -c 'import time\nwhile time.process_time() < 0.5: pass'; sleep 1"
    async with local() as (client, _):
        job = await submit(client, spec=burn, working_dir=str(tmp_path))
        await wait_state(client, job["id"], "running")
    async with local() as (client, _):  # not its parent: the supervisor's `times` tells
        done = await wait_state(client, job["id"], "completed", "failed", timeout=30)
    assert done["state"] == "completed"
    cost = done["accounting"]
    assert 0.4 <= cost["cpu_user_seconds"] + cost["cpu_system_seconds"] <= 1.0
    assert cost["wall_seconds"] >= 1


async def test_stats_sum_by_state_and_filter_by_tag(
    local: Callable[..., Any], tmp_path: Path
) -> None:
    async with local() as (client, _):
        jobs = [
            await submit(client, spec=spec, tags=["t"], working_dir=str(tmp_path))
            for spec in ("true", "true", "exit 1")
        ]
        untagged = await submit(client, spec="true", working_dir=str(tmp_path))
        for job in [*jobs, untagged]:
            await wait_state(client, job["id"], "completed", "failed", timeout=30)
        tagged = (await client.get(f"{API}/stats", params={"tag": "t"})).json()
        everything = (await client.get(f"{API}/stats")).json()
        nothing = (await client.get(f"{API}/stats", params={"tag": "none"})).json()
    assert (tagged["jobs"], tagged["measured"]) == (3, 3)
    assert tagged["by_state"]["completed"]["jobs"] == 2
    assert tagged["by_state"]["failed"]["jobs"] == 1
    assert tagged["peak_memory_bytes"] > 0
    assert everything["jobs"] == 4 and everything["tag"] is None
    assert nothing == {
        "tag": "none", "jobs": 0, "measured": 0, "cpu_hours": 0.0,
        "peak_memory_bytes": None, "wall_hours": 0.0, "by_state": {},
    }  # fmt: skip
