"""Job arrays (issue #11), through the real server and the local backend.

1. Accept: ``POST /api/v1/jobs`` with ``array: 0-9999`` (10,000 tasks), one
   request; 20 submissions, each queued behind a ``sleep 600`` blocker so
   nothing runs. Target: median <= 50 ms.
2. Space: the database of a server holding one 10,000-task array against
   one holding 10,000 single jobs (one batch), both queued behind a blocker,
   in pages in use (``page_count - freelist_count``) after the submit, less
   the database's before it (an array's one row may fit a page in use: 0).
   Target: array <= 10 % of single jobs.
   Also reported by 3., not a target: each database once everything ran
   (an array has a task row per task then).
3. Throughput: 10,000 ``true`` tasks as one array against 10,000 ``true``
   single jobs as one batch, same run, rounds interleaved, the local
   backend's ``max_cores`` = ``--concurrency`` (default: CPUs). Target:
   array rate >= single-job rate (median of rounds).

    .venv/bin/python bench/bench_arrays.py [--tasks 10000] [--rounds 2] [--nice -10]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import active_jobs, unfinished_in_db
from common import Server, add_nice_arg, check, finish, scratch_dir, start_results, wait_until

JOBS = "/api/v1/jobs"
ACCEPT_TARGET_MS = 50.0
SPACE_TARGET = 0.10


def server(root: Path, concurrency: int, label: str) -> Server:
    env = {"GANTRY_BACKEND__LOCAL__MAX_CORES": str(concurrency)}
    return Server.gantry(root, env=env, label=label)


def blocker(client: httpx.Client, work: Path) -> int:
    body = {"name": "blocker", "spec": "sleep 600", "working_dir": str(work)}
    answer = client.post(JOBS, json=body)
    answer.raise_for_status()
    return int(answer.json()["id"])


def pages_in_use(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        count = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    return int((count - free) * page)


def bench_accept(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== 1. accept: one POST of a {args.tasks}-task array, 20 times")
    work = root / "work"
    work.mkdir()
    with (
        server(root / "accept", args.concurrency, "accept") as srv,
        httpx.Client(base_url=srv.base_url, timeout=60) as client,
    ):
        first = blocker(client, work)
        times = []
        for i in range(21):
            body = {
                "name": f"sweep{i}", "spec": "true", "array": f"0-{args.tasks - 1}",
                "depends_on": [first], "working_dir": str(work),
            }  # fmt: skip
            begin = time.perf_counter()
            answer = client.post(JOBS, json=body)
            took = time.perf_counter() - begin
            answer.raise_for_status()
            if i:  # the first warms the connection and the server's caches
                times.append(took * 1e3)
        client.post(f"{JOBS}/{first}/cancel").raise_for_status()
    median, worst = statistics.median(times), max(times)
    print(f"  median {median:.1f} ms, max {worst:.1f} ms")
    return {
        "median_ms": median,
        "max_ms": worst,
        "checks": [
            check(
                f"accept a {args.tasks}-task array (median of 20)",
                f"{median:.1f} ms",
                f"<= {ACCEPT_TARGET_MS:.0f} ms",
                median <= ACCEPT_TARGET_MS,
            )
        ],
    }


def space_of(root: Path, args: argparse.Namespace, body_of: Any, label: str) -> int:
    work = root / "work"
    work.mkdir(exist_ok=True)
    data = root / label
    with (
        server(data, args.concurrency, label) as srv,
        httpx.Client(base_url=srv.base_url, timeout=120) as client,
    ):
        path, body = body_of(blocker(client, work), work)
        base_size = pages_in_use(data / "gantry.db")
        client.post(path, json=body).raise_for_status()
    return pages_in_use(data / "gantry.db") - base_size


def bench_space(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== 2. space: one {args.tasks}-task array vs {args.tasks} single jobs, queued")
    n = args.tasks

    def array_body(first: int, work: Path) -> tuple[str, dict[str, Any]]:
        return JOBS, {"spec": "true", "array": f"0-{n - 1}", "depends_on": [first],
                      "working_dir": str(work)}  # fmt: skip

    def batch_body(first: int, work: Path) -> tuple[str, dict[str, Any]]:
        jobs = [{"name": f"j{i}", "spec": "true", "depends_on": [first],
                 "working_dir": str(work)} for i in range(n)]  # fmt: skip
        return f"{JOBS}/batch", {"jobs": jobs}

    array = space_of(root, args, array_body, "space-array")
    single = space_of(root, args, batch_body, "space-single")
    ratio = array / single
    print(f"  array {array} bytes, single jobs {single} bytes (pages in use): {ratio:.4f}")
    return {
        "array_bytes": array,
        "single_bytes": single,
        "ratio": ratio,
        "checks": [
            check(
                f"database space of a {n}-task array / {n} single jobs (queued)",
                f"{ratio:.2%} ({array} / {single} bytes)",
                f"<= {SPACE_TARGET:.0%}",
                ratio <= SPACE_TARGET,
            )
        ],
    }


def run_through(root: Path, args: argparse.Namespace, label: str, as_array: bool) -> dict[str, Any]:
    work = root / "work"
    work.mkdir(exist_ok=True)
    n = args.tasks
    data = root / label
    with (
        server(data, args.concurrency, label) as srv,
        httpx.Client(base_url=srv.base_url, timeout=300) as client,
    ):
        if as_array:
            path, body = JOBS, {"spec": "true\n", "array": f"0-{n - 1}", "working_dir": str(work)}
        else:
            jobs = [{"name": f"t{i}", "spec": "true\n", "working_dir": str(work)} for i in range(n)]
            path, body = f"{JOBS}/batch", {"jobs": jobs}
        content = httpx.Request("POST", "/", json=body).read()
        before = srv.sample()
        begin = time.perf_counter()
        answer = client.post(path, content=content, headers={"content-type": "application/json"})
        answer.raise_for_status()
        wait_until(lambda: active_jobs(client) == 0, timeout=max(300.0, n / 5), interval=0.025)
        wait_until(lambda: not unfinished_in_db(client), timeout=300, interval=0.025)
        elapsed = time.perf_counter() - begin
        cpu_s, cores = srv.sample().cpu_since(before)
        if as_array:
            job = client.get(f"{JOBS}/{answer.json()['id']}").json()
            assert job["state"] == "completed", job["reason"]
    return {"rate": n / elapsed, "seconds": elapsed, "server_cpu_s": cpu_s, "cores": cores,
            "db_bytes": pages_in_use(data / "gantry.db")}  # fmt: skip


def bench_throughput(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== 3. {args.tasks} `true` tasks as one array vs as single jobs (one batch), "
          f"max_cores {args.concurrency}, {args.rounds} round(s)")  # fmt: skip
    arrays, singles = [], []
    for i in range(args.rounds):
        singles.append(run_through(root, args, f"single{i}", as_array=False))
        arrays.append(run_through(root, args, f"array{i}", as_array=True))
        a, s = arrays[-1], singles[-1]
        print(f"  round {i + 1}: single jobs {s['rate']:6.0f}/s ({s['server_cpu_s']:.1f} CPU-s, "
              f"db {s['db_bytes'] / 2**20:.1f} MiB) | array {a['rate']:6.0f}/s "
              f"({a['server_cpu_s']:.1f} CPU-s, db {a['db_bytes'] / 2**20:.1f} MiB)")  # fmt: skip
    array_rate = statistics.median(r["rate"] for r in arrays)
    single_rate = statistics.median(r["rate"] for r in singles)
    return {
        "arrays": arrays,
        "singles": singles,
        "checks": [
            check(
                f"{args.tasks} tasks through local: array rate / single-job rate",
                f"{array_rate / single_rate:.2f} ({array_rate:.0f} / {single_rate:.0f} per s)",
                ">= 1.00",
                array_rate >= single_rate,
            )
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", choices=("accept", "space", "throughput"))
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    checks: list[dict[str, Any]] = []
    with scratch_dir("gantry-bench-arrays", keep=args.keep) as root:
        for name, part in (("accept", bench_accept), ("space", bench_space),
                           ("throughput", bench_throughput)):  # fmt: skip
            if args.only in (None, name):
                results[name] = part(root, args)
                checks += results[name]["checks"]
    finish("bench_arrays", results, checks)


if __name__ == "__main__":
    main()
