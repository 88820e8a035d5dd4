"""A chain of dependent ``true`` jobs: gantry against a bare loop and against gwf.

N jobs, each depending on the one before (``depends_on`` the previous job's
name, all in one ``POST /jobs/batch``), through the local backend of a real
server. Two yardsticks in the same run, rounds interleaved:

- the bare loop of ``bench_e2e`` with concurrency 1: asyncio running the same
  ``bash script`` (``true``) N times, one after another;
- gwf 1.7's local backend: ``gwf workers -n <cores>`` started first (not
  timed), a workflow of N targets where target i takes target i-1's output
  as its input, timed from launching ``gwf run`` until gwf's workers report
  every target completed (as ``bench_gwf.py`` does), or for at most
  ``--gwf-limit`` seconds: then its rate so far counts (on a loaded machine
  gwf's workers got through 103 of 1,000 in ten minutes).

gantry's clock runs from the batch POST until the database holds no
unfinished job (``/healthz`` polled every 25 ms, then one list query).

Targets: gantry >= 0.70 of the bare loop, and >= 3x gwf's rate, as medians
of the per-round ratios. Server CPU per job is printed too.

    .venv/bin/python bench/bench_chain.py [--jobs 1000] [--rounds 3] [--no-gwf]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import active_jobs, unfinished_in_db
from bench_gwf import BIN, GwfWorkers
from common import (
    Server,
    add_nice_arg,
    bare_loop,
    check,
    finish,
    scratch_dir,
    start_results,
    wait_until,
)

BARE_TARGET = 0.70
GWF_TARGET = 3.0
POLL_S = 0.025


def chain_body(jobs: int, round_no: int) -> bytes:
    """One batch: job i depends on job i-1 by its name in the batch."""
    items: list[dict[str, Any]] = []
    for i in range(jobs):
        item: dict[str, Any] = {"name": f"c{round_no}_{i}", "spec": "true\n"}
        if i:
            item["depends_on"] = [f"c{round_no}_{i - 1}"]
        items.append(item)
    return httpx.Request("POST", "/", json={"jobs": items}).read()


def gantry_chain(server: Server, jobs: int, round_no: int) -> dict[str, float]:
    body = chain_body(jobs, round_no)
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=server.base_url, timeout=120) as client:
        before = server.sample()
        begin = time.perf_counter()
        client.post("/api/v1/jobs/batch", content=body, headers=headers).raise_for_status()
        timeout = max(120.0, jobs / 5)
        wait_until(lambda: active_jobs(client) == 0, timeout=timeout, interval=POLL_S)
        wait_until(lambda: not unfinished_in_db(client), timeout=timeout, interval=POLL_S)
        elapsed = time.perf_counter() - begin
        cpu_s, _ = server.sample().cpu_since(before)
        failed = client.get("/api/v1/jobs", params={"state": "failed", "limit": 1}).json()
    if failed["items"]:
        raise SystemExit(f"a chain job failed: {failed['items'][0]}; see {server.log_path}")
    return {"rate": jobs / elapsed, "seconds": elapsed, "cpu_ms_per_job": cpu_s / jobs * 1e3}


def write_chain_workflow(directory: Path, jobs: int, round_no: int) -> None:
    """N targets, each taking the previous one's output (gwf's only way to say "after")."""
    (directory / "workflow.py").write_text(
        "from gwf import Workflow\n"
        "gwf = Workflow()\n"
        f"for i in range({jobs}):\n"
        f"    inputs = [f'r{round_no}_{{i - 1}}.out'] if i else []\n"
        f"    gwf.target(f'r{round_no}_t{{i}}', inputs=inputs, "
        f"outputs=[f'r{round_no}_{{i}}.out']) << 'true'\n"
    )


def gwf_chain(workers: GwfWorkers, jobs: int, round_no: int, limit: float) -> float:
    write_chain_workflow(workers.home, jobs, round_no)
    before = workers.completed()
    begin = time.perf_counter()
    subprocess.run([str(BIN / "gwf"), "run"], cwd=workers.home, check=True, capture_output=True)
    deadline = begin + limit
    while (done := workers.completed() - before) < jobs:
        if time.perf_counter() > deadline:
            # Its rate so far: gwf is given the benefit of the doubt (its chain
            # slows down as it goes, so the full chain would be slower still).
            print(f"  gwf: {done} of {jobs} completed after {limit:.0f} s; rate so far counts")
            return max(done, 1) / (time.perf_counter() - begin)
        time.sleep(POLL_S)
    return jobs / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-gwf", action="store_true", help="leave gwf out")
    parser.add_argument(
        "--gwf-limit", type=float, default=120.0, help="seconds after which gwf's rate counts"
    )
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    cores = os.cpu_count() or 1
    rounds: list[dict[str, float]] = []
    with scratch_dir("gantry-bench-chain-") as root:
        server = Server.gantry(root / "gantry", label="gantry-chain")
        workers = None
        if not args.no_gwf:
            (root / "gwf").mkdir()
            workers = GwfWorkers(root / "gwf", cores)
        try:
            with server:
                for i in range(args.rounds):
                    work = root / f"bare{i}"
                    work.mkdir()
                    row: dict[str, float] = {"bare": asyncio.run(bare_loop(work, args.jobs, 1))}
                    ours = gantry_chain(server, args.jobs, i)
                    row.update(gantry=ours["rate"], cpu_ms_per_job=ours["cpu_ms_per_job"])
                    if workers is not None:
                        row["gwf"] = gwf_chain(workers, args.jobs, i, args.gwf_limit)
                    rounds.append(row)
                    gwf = f" | gwf {row['gwf']:5.0f} jobs/s" if "gwf" in row else ""
                    print(
                        f"  round {i + 1}: bare loop {row['bare']:5.0f} jobs/s | gantry "
                        f"{row['gantry']:5.0f} jobs/s (server {row['cpu_ms_per_job']:.2f} "
                        f"CPU-ms/job){gwf}"
                    )
        finally:
            if workers is not None:
                workers.stop()
    results["rounds"] = rounds
    bare_ratio = statistics.median(r["gantry"] / r["bare"] for r in rounds)
    checks = [
        check(
            f"chain of {args.jobs}: gantry / bare loop one after another (median of rounds)",
            f"{bare_ratio:.2f}",
            f">= {BARE_TARGET:.2f}",
            bare_ratio >= BARE_TARGET,
        )
    ]
    if workers is not None:
        gwf_ratio = statistics.median(r["gantry"] / r["gwf"] for r in rounds)
        checks.append(
            check(
                f"chain of {args.jobs}: gantry / gwf local ({cores} workers)",
                f"x{gwf_ratio:.2f}",
                f">= x{GWF_TARGET:g}",
                gwf_ratio >= GWF_TARGET,
            )
        )
    finish("bench_chain", results, checks)


if __name__ == "__main__":
    main()
