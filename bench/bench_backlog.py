"""End-to-end rate with a big backlog queued behind a held dependency.

Two servers (uvicorn subprocesses, SQLite, local backend) are set up before
any clock runs: each gets a blocker (``sleep 3600``, one core) and a backlog
of queued jobs that depend on it (default 64,000 on one, 1,000 on the other,
in batches of 5,000), so the backlog stays queued the whole time. Then, in
interleaved rounds, N independent ``true`` jobs (default 2,000, one batch)
run end to end on each (clock: the POST until neither the engine nor the
database holds an unfinished job other than the backlog and its blocker).
The local backend has ``max_cores`` = concurrency + 1 (the blocker's core).

Target: the rate with the big backlog is within 10 % of the small one's
(median of the per-round ratios >= 0.90).

    .venv/bin/python bench/bench_backlog.py [--backlog 64000] [--small 1000] [--jobs 2000]
        [--rounds 3] [--concurrency N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import active_jobs
from common import Server, add_nice_arg, check, finish, scratch_dir, start_results, wait_until

TARGET = 0.90
BATCH = 5000
JOBS = "/api/v1/jobs"
POLL_S = 0.025
HEADERS = {"content-type": "application/json"}


def post_batch(client: httpx.Client, jobs: list[dict[str, Any]]) -> list[int]:
    body = httpx.Request("POST", "/", json={"jobs": jobs}).read()
    answer = client.post(f"{JOBS}/batch", content=body, headers=HEADERS)
    answer.raise_for_status()
    return [job["id"] for job in answer.json()["jobs"]]


def fill(client: httpx.Client, backlog: int) -> int:
    """The blocker and ``backlog`` jobs behind it; the number of jobs left active."""
    blocker = post_batch(client, [{"name": "blocker", "spec": "sleep 3600\n"}])[0]
    wait_until(lambda: client.get(f"{JOBS}/{blocker}").json()["state"] == "running", timeout=30)
    for start in range(0, backlog, BATCH):
        count = min(BATCH, backlog - start)
        post_batch(
            client,
            [
                {"name": f"held_{start + i}", "spec": "true\n", "depends_on": [blocker]}
                for i in range(count)
            ],
        )
    return backlog + 1


def unfinished(client: httpx.Client, prefix: str) -> bool:
    states = [("state", s) for s in ("queued", "submitted", "running")]
    page = client.get(JOBS, params=[*states, ("name", prefix), ("limit", "1")]).json()
    return bool(page["items"])


def measure(server: Server, jobs: int, resident: int, round_no: int) -> dict[str, float]:
    body = [{"name": f"r{round_no}_{i}", "spec": "true\n"} for i in range(jobs)]
    with httpx.Client(base_url=server.base_url, timeout=300) as client:
        encoded = httpx.Request("POST", "/", json={"jobs": body}).read()
        before = server.sample()
        begin = time.perf_counter()
        client.post(f"{JOBS}/batch", content=encoded, headers=HEADERS).raise_for_status()
        wait_until(lambda: active_jobs(client) == resident, timeout=600, interval=POLL_S)
        # Committed too: no job of this round is left unfinished in the database
        # (asked once the engine is done: a filtered list over the backlog each
        # 25 ms would cost the big server more than the small one).
        wait_until(lambda: not unfinished(client, f"r{round_no}_"), timeout=600, interval=POLL_S)
        elapsed = time.perf_counter() - begin
        cpu_s, _ = server.sample().cpu_since(before)
    return {"rate": jobs / elapsed, "cpu_ms_per_job": cpu_s / jobs * 1e3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=64_000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    env = {"GANTRY_BACKEND__LOCAL__MAX_CORES": str(args.concurrency + 1)}
    rounds: list[dict[str, Any]] = []
    with scratch_dir("gantry-bench-backlog-") as root:
        big = Server.gantry(root / "big", env=env, label="gantry-big")
        small = Server.gantry(root / "small", env=env, label="gantry-small")
        with big, small:
            resident = {}
            for server, backlog in ((big, args.backlog), (small, args.small)):
                with httpx.Client(base_url=server.base_url, timeout=300) as client:
                    begin = time.perf_counter()
                    resident[server.label] = fill(client, backlog)
                    wait_until(
                        lambda c=client, n=resident[server.label]: active_jobs(c) == n,
                        timeout=120,
                    )
                    print(
                        f"  {server.label}: {backlog} jobs queued behind a running blocker "
                        f"in {time.perf_counter() - begin:.1f} s, "
                        f"RSS {server.sample().rss_mb:.0f} MB"
                    )
            for i in range(args.rounds):
                row = {
                    "big": measure(big, args.jobs, resident[big.label], i),
                    "small": measure(small, args.jobs, resident[small.label], i),
                }
                row["ratio"] = row["big"]["rate"] / row["small"]["rate"]
                rounds.append(row)
                print(
                    f"  round {i + 1}: backlog {args.backlog}: {row['big']['rate']:.0f} jobs/s "
                    f"({row['big']['cpu_ms_per_job']:.2f} CPU-ms/job) | backlog {args.small}: "
                    f"{row['small']['rate']:.0f} jobs/s ({row['small']['cpu_ms_per_job']:.2f} "
                    f"CPU-ms/job) | ratio {row['ratio']:.2f}"
                )
            # The blockers are cancelled, so no `sleep` outlives the benchmark.
            for server in (big, small):
                with httpx.Client(base_url=server.base_url, timeout=300) as client:
                    blocker = client.get(JOBS, params={"name": "blocker", "limit": 1}).json()
                    for job in blocker["items"]:
                        client.post(f"{JOBS}/{job['id']}/cancel")
                    wait_until(lambda c=client: active_jobs(c) == 0, timeout=300, interval=0.2)
    results["rounds"] = rounds
    ratio = statistics.median(r["ratio"] for r in rounds)
    checks = [
        check(
            f"{args.jobs} jobs end to end, backlog {args.backlog} / backlog {args.small}",
            f"{ratio:.2f}",
            f">= {TARGET:.2f}",
            ratio >= TARGET,
        )
    ]
    finish("bench_backlog", results, checks)


if __name__ == "__main__":
    main()
