"""What /metrics costs: per job on the hot path, and per scrape with 1M jobs stored.

1. The engine's meter, in process: a dispatch and a start observed per job
   (what every job pays), against the no-op meter and prometheus_client's own
   Histogram. Target: <= 3 us per job, 1 % of the engine's 0.3 ms per job
   (bench_engine_overhead's target).
2. A real server (uvicorn subprocess) on a copy of bench_million's cached
   1,000,000-job SQLite database: the first scrape (it counts the ended jobs
   by backend, a full scan), then ``--rounds`` scrapes that reuse that count,
   and /healthz while the first scrape runs (the scan is on a worker thread:
   the event loop must not wait for it). Targets: later scrapes p50 <= 50 ms;
   /healthz during the first scrape <= 100 ms; the jobs counted = 1,000,000.

    .venv/bin/python bench/bench_metrics.py [--jobs 1000000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import threading
import time
import timeit
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_million import cached_db
from common import Server, add_nice_arg, check, finish, scratch_dir, start_results

from gantry.jobs.meter import NoMeter
from gantry.metrics import PrometheusMeter

PER_JOB_TARGET_US = 3.0
SCRAPE_TARGET_MS = 50.0
HEALTH_TARGET_MS = 100.0


def per_job_us(observe: Any, rounds: int = 5, number: int = 200_000) -> float:
    """Median over rounds of one job's observations (a dispatch and a start), in us."""

    def job() -> None:
        observe("local", 0.004, 1.5)

    return statistics.median(timeit.repeat(job, number=number, repeat=rounds)) / number * 1e6


def meter_costs() -> dict[str, float]:
    ours, none = PrometheusMeter(), NoMeter()
    library = Histogram("x_seconds", "x", ["backend"], registry=CollectorRegistry())
    return {
        "gantry": per_job_us(lambda b, d, s: (ours.dispatched(b, d), ours.started(b, s))),
        "no-op": per_job_us(lambda b, d, s: (none.dispatched(b, d), none.started(b, s))),
        "prometheus_client Histogram": per_job_us(
            lambda b, d, s: (library.labels(b).observe(d), library.labels(b).observe(s))
        ),
    }


def jobs_counted(text: str) -> int:
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "gantry_jobs"
        )
    )


def scrape_costs(server: Server, rounds: int) -> dict[str, Any]:
    url = server.url("/metrics")
    health: list[float] = []
    done = threading.Event()

    def watch_health() -> None:  # while the first scrape runs
        with httpx.Client(timeout=30) as client:
            while not done.is_set():
                began = time.perf_counter()
                client.get(server.url("/healthz"))
                health.append(time.perf_counter() - began)
                time.sleep(0.05)

    watcher = threading.Thread(target=watch_health)
    with httpx.Client(timeout=60) as client:
        watcher.start()
        began = time.perf_counter()
        first = client.get(url)
        first_s = time.perf_counter() - began
        done.set()
        watcher.join()
        later = []
        for _ in range(rounds):
            began = time.perf_counter()
            client.get(url).raise_for_status()
            later.append(time.perf_counter() - began)
            time.sleep(0.2)
    first.raise_for_status()
    return {
        "first_s": first_s,
        "later_ms": [s * 1000 for s in later],
        "health_ms": [s * 1000 for s in health],
        "jobs": jobs_counted(first.text),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gantry-bench",
    )
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    checks: list[dict[str, Any]] = []

    print("\n== the meter, per job (a dispatch and a start observed)")
    costs = results["meter_us"] = meter_costs()
    for name, us in costs.items():
        print(f"  {name:28s} {us:5.2f} us")
    checks.append(
        check("meter cost per job", f"{costs['gantry']:.2f} us",
              f"<= {PER_JOB_TARGET_US:g} us", costs["gantry"] <= PER_JOB_TARGET_US)
    )  # fmt: skip

    print(f"\n== /metrics with {args.jobs:,} jobs in the database")
    source, _ = cached_db(args.cache_dir, args.jobs, refill=False)
    with scratch_dir("gantry-bench-metrics-") as root:
        shutil.copyfile(source, root / "gantry.db")
        with Server.gantry(root, label="gantry-metrics") as server:
            scrapes = results["scrapes"] = scrape_costs(server, args.rounds)
    later = statistics.median(scrapes["later_ms"])
    worst_health = max(scrapes["health_ms"], default=0.0)
    print(
        f"  first scrape {scrapes['first_s']:.2f} s (counts the ended jobs); later ones "
        f"p50 {later:.1f} ms, max {max(scrapes['later_ms']):.1f} ms; /healthz during the "
        f"first: {len(scrapes['health_ms'])} requests, max {worst_health:.1f} ms"
    )
    checks += [
        check("later scrapes, p50", f"{later:.1f} ms", f"<= {SCRAPE_TARGET_MS:g} ms",
              later <= SCRAPE_TARGET_MS),
        check("/healthz during the first scrape, max", f"{worst_health:.1f} ms",
              f"<= {HEALTH_TARGET_MS:g} ms", worst_health <= HEALTH_TARGET_MS),
        check("jobs counted", f"{scrapes['jobs']:,}", f"{args.jobs:,}",
              scrapes["jobs"] == args.jobs),
    ]  # fmt: skip
    finish("bench_metrics", results, checks)


if __name__ == "__main__":
    main()
