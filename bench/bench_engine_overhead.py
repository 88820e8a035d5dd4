"""The engine's own cost per job: a backend that ends each job at once, no process.

A real server (uvicorn subprocess, SQLite) built by this file's
:func:`create` with one extra backend, ``instant``, registered here and not
in the product: its ``submit`` answers the job's key and, on the next turn
of the loop, reports it running and then completed. So everything a job
costs is gantry's: the batch insert, gating, the dispatch intent, the
handover, three state changes with their event rows, the end.

N jobs (default 10,000) in batches of 5,000; the clock runs from the first
POST until the database holds no unfinished job. Reported per job: wall
time, and server CPU. Target: <= 0.3 ms per job (median of rounds).

    .venv/bin/python bench/bench_engine_overhead.py [--jobs 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import active_jobs, unfinished_in_db
from common import BENCH, Server, add_nice_arg, check, finish, scratch_dir, start_results

from gantry.backends.base import Backend, BackendStatus, JobSubmission, StatusReport

TARGET_MS = 0.3
BATCH = 5000
POLL_S = 0.025


class InstantBackend(Backend):
    """Ends every job it is given as soon as ``submit`` has returned."""

    name = "instant"

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        key = job.key
        asyncio.get_running_loop().call_soon(self._end, key)
        return key

    def _end(self, key: str) -> None:
        now = time.time()
        self.context.report(key, StatusReport(BackendStatus.RUNNING, started_at=now))
        done = StatusReport(BackendStatus.COMPLETED, 0, started_at=now, ended_at=now)
        self.context.report(key, done)

    async def cancel(self, ref: str) -> None:
        return None

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        return {ref: StatusReport(BackendStatus.COMPLETED, 0) for ref in refs}


def create() -> Any:
    """The server with ``instant`` beside the installed backends (uvicorn --factory)."""
    from gantry.backends.local import LocalBackend
    from gantry.main import create_app

    return create_app(backends={"local": LocalBackend, "instant": InstantBackend})


def one_round(root: Path, jobs: int) -> dict[str, float]:
    server = Server(
        "bench_engine_overhead:create",
        data_dir=root,
        env={
            "GANTRY_DATA_DIR": str(root),
            "GANTRY_DEFAULT_BACKEND": "instant",
            "GANTRY_LOG_LEVEL": "warning",
            "PYTHONPATH": str(BENCH),
        },
        factory=True,
        label="gantry-instant",
    )
    sizes = [min(BATCH, jobs - start) for start in range(0, jobs, BATCH)]
    bodies = [
        httpx.Request(
            "POST", "/", json={"jobs": [{"name": f"i{b}_{i}", "spec": "true\n"} for i in range(n)]}
        ).read()
        for b, n in enumerate(sizes)
    ]
    headers = {"content-type": "application/json"}
    with server, httpx.Client(base_url=server.base_url, timeout=120) as client:
        before = server.sample()
        begin = time.perf_counter()
        for body in bodies:
            client.post("/api/v1/jobs/batch", content=body, headers=headers).raise_for_status()
        submitted = time.perf_counter() - begin
        while active_jobs(client) or unfinished_in_db(client):
            time.sleep(POLL_S)
        elapsed = time.perf_counter() - begin
        cpu_s, _ = server.sample().cpu_since(before)
    return {
        "ms_per_job": elapsed / jobs * 1e3,
        "cpu_ms_per_job": cpu_s / jobs * 1e3,
        "submit_ms_per_job": submitted / jobs * 1e3,
        "seconds": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    rounds = []
    with scratch_dir("gantry-bench-instant-") as root:
        for i in range(args.rounds):
            row = one_round(root / f"r{i}", args.jobs)
            rounds.append(row)
            print(
                f"  round {i + 1}: {row['ms_per_job']:.3f} ms/job wall ({row['seconds']:.2f} s; "
                f"batch POSTs {row['submit_ms_per_job']:.3f} ms/job), server "
                f"{row['cpu_ms_per_job']:.3f} CPU-ms/job"
            )
    results["rounds"] = rounds
    wall = statistics.median(r["ms_per_job"] for r in rounds)
    cpu = statistics.median(r["cpu_ms_per_job"] for r in rounds)
    checks = [
        check(
            f"engine overhead per job, {args.jobs} jobs, instant backend (median of rounds)",
            f"{wall:.3f} ms wall, {cpu:.3f} CPU-ms",
            f"<= {TARGET_MS} ms",
            wall <= TARGET_MS,
        )
    ]
    finish("bench_engine_overhead", results, checks)


if __name__ == "__main__":
    main()
