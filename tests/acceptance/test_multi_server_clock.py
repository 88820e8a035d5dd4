"""A server whose clock jumps two hours ahead takes no live server's jobs.

Two real servers on one PostgreSQL; the second runs under libfaketime, and
its whole clock (wall and monotonic) jumps forward while the first holds
open jobs. Leases are the database's clock: nobody takes anybody's jobs,
nobody loses a lease, and both go on working.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests import postgres as postgres_cluster
from tests.acceptance.test_multi_server import (
    LEASE,
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

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
HOW = "needs libfaketime: apt-get install faketime (scripts/test does it)"


def test_a_server_whose_clock_jumps_steals_no_lease(
    tmp_path: Path, postgres: postgres_cluster.Cluster
) -> None:
    need(FAKETIME.exists(), HOW)
    url = postgres.new_database()
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    steady, jumpy = servers(tmp_path, url, 2)
    jumpy.env.update(
        LD_PRELOAD=str(FAKETIME), FAKETIME_TIMESTAMP_FILE=str(offset), FAKETIME_CACHE_DURATION="1"
    )
    start_all([steady, jumpy])
    marks = tmp_path / "marks"
    marks.mkdir()
    go = tmp_path / "go"
    hold = f"while [ ! -e {go} ]; do sleep 0.1; done"
    try:
        assert steady.proc is not None
        steady_id = server_ids(url)[steady.proc.pid]
        with steady.client() as client:
            blocker = batch(client, [{"name": "blocker", "spec": f"{mark(marks)}; {hold}"}])[0]
            deadline = time.monotonic() + 30
            while state(client, blocker) != "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            jobs = [{"name": f"open_{n}", "spec": mark(marks), "depends_on": [blocker]}
                    for n in range(20)]  # fmt: skip
            ids = [blocker, *batch(client, jobs)]
        offset.write_text("+2h\n")  # the jumpy server's clock: two hours ahead from now
        time.sleep(float(LEASE) * 3)
        assert all(owner == steady_id for i, owner in owners(url).items() if i in ids)
        with jumpy.client() as client:  # the jumpy one works on
            own = batch(client, [{"name": "mine", "spec": mark(marks)}])[0]
            assert wait_ended(client, [own])[own]["state"] == "completed"
        go.touch()
        with steady.client() as client:
            ended = wait_ended(client, ids)
        assert {ended[i]["state"] for i in ids} == {"completed"}
        runs = {int(p.name): p.read_text().splitlines() for p in marks.iterdir()}
        assert all(len(lines) == 1 for lines in runs.values())
        for proc in (steady, jumpy):
            assert proc.proc is not None and proc.proc.poll() is None
            log = proc.log_path.read_text()
            assert "took over" not in log and "lost its lease" not in log, log[-2000:]
    finally:
        go.touch()
        for proc in (steady, jumpy):
            proc.stop()
