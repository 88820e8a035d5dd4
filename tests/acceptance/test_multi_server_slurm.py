"""Three real servers on one PostgreSQL with Slurm jobs on the test cluster.

Slurm jobs are reachable from every server (the backend is not bound to a
machine), so when one server is killed with -9 mid-run, a survivor takes
its jobs over through Slurm itself: the running ones are found again by
their key and adopted, never submitted twice; every job completes once.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests import postgres as postgres_cluster
from tests.acceptance.test_multi_server import (
    batch,
    mark,
    owners,
    server_ids,
    servers,
    start_all,
    state,
    wait_ended,
)
from tests.conftest import need
from tests.integration.test_backend_suite import SLURM_HOW, slurm_running

pytestmark = [pytest.mark.postgres, pytest.mark.slurm, pytest.mark.timeout(300)]


def test_kill_9_of_one_of_three_servers_with_slurm_jobs(
    tmp_path: Path, postgres: postgres_cluster.Cluster
) -> None:
    need(slurm_running(), SLURM_HOW)
    url = postgres.new_database()
    # Job ids start at 1 in every new database: a prefix of this run's own keeps a
    # takeover's lookup by name from finding an earlier run's finished Slurm jobs.
    prefix = f"gms{uuid.uuid4().hex[:8]}"
    trio = servers(tmp_path, url, 3, GANTRY_ENABLED_BACKENDS='["slurm"]',
                   GANTRY_DEFAULT_BACKEND="slurm",
                   GANTRY_BACKEND__SLURM__JOB_NAME_PREFIX=prefix)  # fmt: skip
    start_all(trio)
    marks, work = tmp_path / "marks", tmp_path / "work"
    marks.mkdir()
    work.mkdir()
    go = tmp_path / "go"
    hold = f"while [ ! -e {go} ]; do sleep 0.2; done"
    clients = [proc.client() for proc in trio]
    try:
        victim = trio[1]
        assert victim.proc is not None
        victim_id = server_ids(url)[victim.proc.pid]
        # The victim's two jobs take the test cluster's two CPUs until it is dead.
        held = batch(clients[1], [
            {"name": f"held_{n}", "spec": f"{mark(marks)}; {hold}", "working_dir": str(work)}
            for n in range(2)
        ])  # fmt: skip
        deadline = time.monotonic() + 60
        while any(state(clients[0], i) != "running" for i in held):
            assert time.monotonic() < deadline, "the victim's Slurm jobs never ran"
            time.sleep(0.2)
        ids = list(held)
        for k, client in enumerate(clients):
            jobs = [{"name": f"q{k}_{n}", "spec": mark(marks), "working_dir": str(work)}
                    for n in range(4)]  # fmt: skip
            ids += batch(client, jobs)
        victim.kill()
        go.touch()
        jobs = wait_ended(clients[0], ids, timeout=180)
        assert {i: jobs[i]["state"] for i in ids} == {i: "completed" for i in ids}
        assert all(jobs[i]["attempt"] == 1 for i in held)
        after = owners(url)
        assert not any(after[i] == victim_id for i in ids), "nobody took the jobs over"
        runs = {int(p.name): p.read_text().splitlines() for p in marks.iterdir()}
        assert set(runs) == set(ids)
        assert all(lines == [f"{i} {jobs[i]['attempt']}"] for i, lines in runs.items()), runs
    finally:
        for client in clients:
            client.close()
        for proc in trio:
            proc.stop()
