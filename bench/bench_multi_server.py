"""Several servers on one PostgreSQL: submit throughput and takeover time.

1. ``POST /api/v1/jobs`` (wrk, one job per request, as bench_api) against one
   server on SQLite and one on PostgreSQL, in the same run, alternating, the
   median of ``--rounds``. Target: PostgreSQL >= 50 % of SQLite.
2. The same load against three servers on one PostgreSQL at once (one wrk
   each, sharing one data dir): total submits/s >= one PostgreSQL server's
   (same round), with 0 errors (non-2xx or socket errors).
3. Takeover: a server holding 1,000 open jobs (queued behind a running local
   blocker) stops heartbeating (SIGSTOP: the lease path) or dies (kill -9:
   its pid is seen gone on this machine); the time until the other servers
   own all 1,000. Target <= lease + 2 s. Then the blocker is cancelled
   through a survivor and the 1,000 end by cascade: they are live there.

Every job ``depends_on`` its server's blocker (``sleep 600``), so the figures
are the submit path, not job execution. PostgreSQL is a throwaway cluster
(tests/postgres.py: initdb as the postgres user, fsync off): needs root and
the PostgreSQL server binaries.

    .venv/bin/python bench/bench_multi_server.py [--rounds 3] [--duration 8]
        [--connections 16] [--lease 5] [--jobs 1000]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    Server,
    WrkResult,
    add_nice_arg,
    check,
    ensure_wrk,
    finish,
    lua_post,
    run_wrk,
    scratch_dir,
    start_results,
    wait_until,
)

from tests import postgres as postgres_cluster

JOBS = "/api/v1/jobs"
ACTIVE = "('queued', 'submitted', 'running', 'cancelling')"


def gantry(data_dir: Path, label: str, url: str | None, lease: float) -> Server:
    env = {"GANTRY_ENABLED_BACKENDS": '["local"]', "GANTRY_SERVER_LEASE": str(lease)}
    if url is not None:
        env["GANTRY_DATABASE_URL"] = url
    server = Server.gantry(data_dir, env=env, label=label)
    server.log_path = data_dir.parent / f"{label}.log"  # one data dir, a log each
    return server


def blocker(client: httpx.Client) -> int:
    answer = client.post(JOBS, json={"name": "blocker", "spec": "sleep 600"})
    answer.raise_for_status()
    job = int(answer.json()["id"])
    wait_until(lambda: client.get(f"{JOBS}/{job}").json()["state"] == "running", timeout=60)
    return job


def load(servers: list[Server], blockers: list[int], args: argparse.Namespace) -> list[WrkResult]:
    """One wrk per server, all at once (warm-up first)."""
    results: list[WrkResult | None] = [None] * len(servers)

    def one(k: int, duration: float) -> None:
        body = {"name": "bench_job", "spec": "true\n", "depends_on": [blockers[k]]}
        results[k] = run_wrk(
            servers[k].url(JOBS), duration=duration, connections=args.connections,
            threads=2, script=lua_post(JOBS, body),
        )  # fmt: skip

    for duration in (args.warmup, args.duration):
        threads = [threading.Thread(target=one, args=(k, duration)) for k in range(len(servers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return [r for r in results if r is not None]


def submit_round(root: Path, url: str | None, count: int, args: argparse.Namespace) -> list[Any]:
    """``count`` servers on one database under wrk; their results."""
    data_dir = root / "var"
    kind = "pg" if url else "sqlite"
    servers = [gantry(data_dir, f"{kind}{count}_{k}", url, args.lease) for k in range(count)]
    try:
        for server in servers:
            server.start()
        blockers = []
        for server in servers:
            with httpx.Client(base_url=server.base_url, timeout=60) as client:
                blockers.append(blocker(client))
        results = load(servers, blockers, args)
        for server, blocked in zip(servers, blockers, strict=True):
            with httpx.Client(base_url=server.base_url, timeout=300) as client:
                client.post(f"{JOBS}/{blocked}/cancel")
        return results
    finally:
        for server in servers:
            server.stop()


def owned_by(url: str, server_id: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = f"SELECT count(*) FROM job WHERE owner = :id AND state IN {ACTIVE}"
            return int(conn.execute(text(query), {"id": server_id}).scalar() or 0)
    finally:
        engine.dispose()


def server_id_of(url: str, pid: int) -> str:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            query = "SELECT id FROM gantry_server WHERE pid = :pid AND retired_at IS NULL"
            return str(conn.execute(text(query), {"pid": pid}).scalar_one())
    finally:
        engine.dispose()


def takeover(root: Path, url: str, how: str, args: argparse.Namespace) -> dict[str, Any]:
    """Seconds until the others own a dead server's ``--jobs`` open jobs; then the cascade."""
    data_dir = root / "var"
    servers = [gantry(data_dir, f"{how}_{k}", url, args.lease) for k in range(3)]
    try:
        for server in servers:
            server.start()
        victim = servers[0]
        with httpx.Client(base_url=victim.base_url, timeout=120) as client:
            blocked = blocker(client)
            jobs = [{"name": f"open_{n}", "spec": "true", "depends_on": [blocked]}
                    for n in range(args.jobs)]  # fmt: skip
            client.post(f"{JOBS}/batch", json={"jobs": jobs}).raise_for_status()
        victim_id = server_id_of(url, victim.pid)
        assert owned_by(url, victim_id) == args.jobs + 1
        assert victim.proc is not None
        began = time.perf_counter()
        victim.proc.send_signal(signal.SIGSTOP if how == "sigstop" else signal.SIGKILL)
        taken = wait_until(lambda: owned_by(url, victim_id) == 0, timeout=120, interval=0.05)
        with httpx.Client(base_url=servers[1].base_url, timeout=120) as client:
            client.post(f"{JOBS}/{blocked}/cancel").raise_for_status()
            page = {"state": ["queued"], "limit": 1}
            cascade = wait_until(
                lambda: not client.get(JOBS, params=page).json()["items"], timeout=120
            )
        return {"how": how, "takeover_s": taken, "cascade_s": cascade,
                "since_stop_s": time.perf_counter() - began}  # fmt: skip
    finally:
        victim = servers[0]
        if victim.proc is not None:
            victim.proc.send_signal(signal.SIGKILL)  # stopped or dead: never SIGCONT it back
            victim.proc.wait(10)
            victim.proc = None
        for server in servers:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--lease", type=float, default=5.0)
    parser.add_argument("--jobs", type=int, default=1000, help="open jobs of the dead server")
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    ensure_wrk()
    if not postgres_cluster.available():
        sys.exit(postgres_cluster.HOW)
    from tests.acceptance.server import free_port

    cluster, pg_root = postgres_cluster.start(free_port())
    rounds: list[dict[str, Any]] = []
    try:
        for number in range(1, args.rounds + 1):
            print(f"round {number}/{args.rounds}")
            one: dict[str, Any] = {}
            for label, url, count in (
                ("sqlite", None, 1),
                ("pg", cluster.new_database(), 1),
                ("pg3", cluster.new_database(), 3),
            ):
                with scratch_dir(f"gantry-bench-{label}-") as root:
                    runs = submit_round(root, url, count, args)
                got = one[label] = {
                    "rps": sum(r.rps for r in runs),
                    "errors": sum(r.errors for r in runs),
                    "each_rps": [round(r.rps) for r in runs],
                }
                print(f"  {label:6s} {got['rps']:7.0f} submits/s (errors {got['errors']}; "
                      f"each {got['each_rps']})")  # fmt: skip
            rounds.append(one)
        taken = []
        for how in ("sigstop", "kill9"):
            with scratch_dir(f"gantry-bench-{how}-") as root:
                last = takeover(root, cluster.new_database(), how, args)
            taken.append(last)
            print(f"  takeover ({how}): {last['takeover_s']:.2f} s to own {args.jobs + 1} jobs, "
                  f"cascade of {args.jobs} cancels {last['cascade_s']:.2f} s")  # fmt: skip
    finally:
        postgres_cluster.stop(pg_root)
    results["rounds"] = rounds
    results["takeover"] = taken
    sqlite = statistics.median(r["sqlite"]["rps"] for r in rounds)
    pg = statistics.median(r["pg"]["rps"] for r in rounds)
    pg3 = statistics.median(r["pg3"]["rps"] for r in rounds)
    errors = sum(r["pg3"]["errors"] + r["pg"]["errors"] for r in rounds)
    stalled = next(t for t in taken if t["how"] == "sigstop")
    ratio = f"{pg:.0f} vs {sqlite:.0f} = {pg / sqlite:.0%}"
    took = stalled["takeover_s"]
    checks = [
        check("PostgreSQL submits/s vs SQLite (median)", ratio, ">= 50 %", pg >= 0.5 * sqlite),
        check(
            "three servers' total vs one's (median)",
            f"{pg3:.0f} vs {pg:.0f}",
            ">= one's",
            pg3 >= pg,
        ),
        check("errors on PostgreSQL (all rounds)", str(errors), "0", errors == 0),
        check(
            f"takeover of {args.jobs} open jobs, lease {args.lease:g} s (SIGSTOP)",
            f"{took:.2f} s",
            f"<= {args.lease + 2:g} s",
            took <= args.lease + 2,
        ),
    ]
    finish("bench_multi_server", results, checks)


if __name__ == "__main__":
    main()
