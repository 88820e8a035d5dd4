"""PostgreSQL restarted under load, under two real servers.

Submits keep arriving through both servers while the database restarts:
each is stored (201) or refused with a retryable 503, never a 500; the
servers reconnect by themselves, keep their leases (nobody takes anybody's
jobs), and every stored job completes once.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import postgres as postgres_cluster
from tests.acceptance.server import ServerProcess, free_port
from tests.acceptance.test_multi_server import mark, servers, start_all, states, wait_ended
from tests.conftest import need

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]


@pytest.fixture
def own_cluster() -> Iterator[tuple[postgres_cluster.Cluster, Path]]:
    """A cluster of this test's own: it is restarted under the servers."""
    need(postgres_cluster.available(), postgres_cluster.HOW)
    cluster, root = postgres_cluster.start(free_port())
    yield cluster, root
    postgres_cluster.stop(root)


def restart(cluster: postgres_cluster.Cluster, root: Path, down: float) -> None:
    """Stop the database (fast: sessions cut), leave it down ``down`` s, start it again."""
    pg_ctl = postgres_cluster.find_bin("pg_ctl") or "pg_ctl"
    data = str(root / "data")
    options = f"-p {cluster.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    for args in (["-m", "fast", "-w", "stop"], ["-o", options, "-w", "-l", f"{root}/log", "start"]):
        subprocess.run(["runuser", "-u", "postgres", "--", pg_ctl, "-D", data, *args],
                       check=True, timeout=60, capture_output=True)  # fmt: skip
        if "stop" in args:
            time.sleep(down)


def test_postgresql_restarted_under_load(
    own_cluster: tuple[postgres_cluster.Cluster, Path], tmp_path: Path
) -> None:
    cluster, root = own_cluster
    marks = tmp_path / "marks"
    marks.mkdir()
    pair = servers(tmp_path, cluster.new_database(), 2)
    start_all(pair)
    codes: Counter[int] = Counter()
    stored: list[int] = []
    stop = threading.Event()

    def submit(proc: ServerProcess, k: int) -> None:
        with proc.client() as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    answer = client.post(
                        "/api/v1/jobs", json={"name": f"s{k}_{n}", "spec": mark(marks)}
                    )
                except httpx.TransportError:
                    codes[-1] += 1  # the server itself must stay up: counted as a failure
                    continue
                codes[answer.status_code] += 1
                if answer.status_code == 201:
                    stored.append(int(answer.json()["id"]))
                elif answer.status_code == 503:
                    codes[-503] += "Retry-After" not in answer.headers  # must say when
                    time.sleep(0.1)
                else:
                    print(answer.status_code, answer.text)

    threads = [threading.Thread(target=submit, args=(p, k)) for k, p in enumerate(pair)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        before = sum(codes.values())
        restart(cluster, root, down=1.5)
        time.sleep(4)
        assert sum(codes.values()) > before, "no submit was answered after the restart"
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    try:
        assert set(codes) <= {201, 503, -503} and not codes[-503], codes
        assert codes[201] > 0 and codes[503] > 0, codes  # the outage was seen, and answered
        with pair[0].client() as client:
            jobs = wait_ended(client, stored)
            assert {jobs[i]["state"] for i in stored} == {"completed"}
            assert len(states(client)) >= len(stored)
        runs = {int(p.name): p.read_text().splitlines() for p in marks.iterdir()}
        assert set(stored) <= set(runs)
        assert all(len(lines) == 1 for lines in runs.values())
        for proc in pair:  # both still serving, neither took the other's jobs
            assert proc.proc is not None and proc.proc.poll() is None
            log = proc.log_path.read_text()
            assert "took over" not in log and "lost its lease" not in log
    finally:
        for proc in pair:
            proc.stop()
