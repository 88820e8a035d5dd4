"""Submit path of the API: one job per request (wrk), and batches.

1. ``POST /api/v1/jobs``, one job per request, 16 connections (wrk, 10 s after
   a 2 s warm-up). Target >= 1,500 jobs/s with no non-2xx answer. Every job
   ``depends_on`` a blocker (``sleep 600`` on the local backend), so all stay
   queued and the figure is the submit path, not job execution; cancelling the
   blocker at the end cascades to all of them, and the time that takes is
   reported too. Baseline in the same run: bench/baseline_app.py (a minimal
   FastAPI + SQLite app, one row per request) under the same load.
2. ``POST /api/v1/jobs/batch``: 10 batches of 5,000 jobs sent one after the
   other by one client (after one uncounted warm-up batch). Target >= 20,000
   jobs/s. Baseline in the same run: the same bodies POSTed to
   bench/baseline_app.py, which validates them and stores each batch in one
   table with one executemany (no indexes, tags, dependencies or events).

    .venv/bin/python bench/bench_api.py [--duration 10] [--connections 16]
        [--rounds 1] [--pin] [--batches 10] [--batch-size 5000] [--only submit|batch]

Needs wrk (installed with apt-get if missing and running as root).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

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

SUBMIT_TARGET = 1500.0
BATCH_TARGET = 20_000.0
JOBS = "/api/v1/jobs"


# --- helpers shared with bench_million -------------------------------------------


def submit_blocker(client: httpx.Client, *, wait_running: bool = True) -> int:
    """A ``sleep 600`` job on the local backend that the benchmark jobs depend on."""
    answer = client.post(
        JOBS, json={"name": "bench_blocker", "spec": "sleep 600\n", "backend": "local"}
    )
    if answer.status_code != 201:
        raise SystemExit(f"the blocker job was refused ({answer.status_code}): {answer.text}")
    blocker = int(answer.json()["id"])
    if wait_running:
        wait_until(lambda: client.get(f"{JOBS}/{blocker}").json()["state"] == "running", timeout=30)
    return blocker


def active_jobs(client: httpx.Client) -> int:
    return int(client.get("/healthz").json()["active_jobs"])


def unfinished_in_db(client: httpx.Client) -> bool:
    """Whether the database still holds a job that has not ended."""
    answer = client.get(
        JOBS,
        params=[("state", s) for s in ("queued", "submitted", "running", "cancelling")]
        + [("limit", "1")],
    )
    answer.raise_for_status()
    return bool(answer.json()["items"])


def cancel_cascade(client: httpx.Client, blocker: int, *, timeout: float = 300) -> dict[str, Any]:
    """Cancel the blocker; seconds until the engine and then the database hold no
    unfinished job (every dependent cancelled)."""
    waiting = active_jobs(client)
    begin = time.perf_counter()
    client.post(f"{JOBS}/{blocker}/cancel").raise_for_status()
    in_memory = wait_until(lambda: active_jobs(client) == 0, timeout=timeout, interval=0.01)
    in_db = wait_until(lambda: not unfinished_in_db(client), timeout=timeout, interval=0.01)
    total = time.perf_counter() - begin
    state = client.get(f"{JOBS}/{blocker}").json()["state"]
    return {
        "jobs": waiting,
        "engine_s": in_memory,
        "db_s": max(total, in_memory + in_db),
        "blocker_state": state,
    }


def submit_body(blocker: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "bench_job", "spec": "true\n", "tags": ["bench"]}
    if blocker is not None:
        body["depends_on"] = [blocker]
    return body


def submit_load(server: Server, blocker: int | None, args: argparse.Namespace) -> dict[str, Any]:
    """wrk POSTing one job per request: warm-up, then the measured run."""
    script = lua_post(JOBS, submit_body(blocker))
    wrk_cpus = [1] if args.pin else None
    if args.warmup > 0:
        run_wrk(
            server.url(JOBS),
            duration=args.warmup,
            connections=args.connections,
            threads=args.threads,
            script=script,
            cpus=wrk_cpus,
        )
    before = server.sample()
    result = run_wrk(
        server.url(JOBS),
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        script=script,
        cpus=wrk_cpus,
    )
    after = server.sample()
    cpu_s, cores = after.cpu_since(before)
    return {
        "wrk": result,
        "server_cpu_s": cpu_s,
        "server_cores": cores,
        "server_cpu_us_per_req": cpu_s / max(result.requests, 1) * 1e6,
        "rss_mb": after.rss_mb,
        "peak_rss_mb": server.peak_rss_mb(),
        "threads": after.threads,
    }


def print_load(label: str, run: dict[str, Any]) -> None:
    result: WrkResult = run["wrk"]
    print(f"  {label:9s} {result.summary()}")
    print(
        f"  {'':9s} server: {run['server_cores']:.2f} cores busy, "
        f"{run['server_cpu_us_per_req']:.0f} CPU-us per request, RSS {run['rss_mb']:.0f} MB "
        f"(peak {run['peak_rss_mb']:.0f} MB), {run['threads']} threads"
    )


def gantry_submit_run(
    root: Path, args: argparse.Namespace, label: str = "gantry", prepare: Any = None
) -> dict[str, Any]:
    """One measured wrk run against a fresh gantry (``prepare(data_dir)`` may fill it)."""
    data_dir = root / label
    if prepare is not None:
        prepare(data_dir)
    server = Server.gantry(data_dir, cpus=[0] if args.pin else None, label=label)
    with server, httpx.Client(base_url=server.base_url, timeout=60) as client:
        blocker = submit_blocker(client)
        run = submit_load(server, blocker, args)
        expected = run["wrk"].requests
        queued = active_jobs(client) - 1
        run["engine_holds"] = queued
        run["cascade"] = cancel_cascade(client, blocker)
        run["rss_after_cascade_mb"] = server.sample().rss_mb
        if queued < expected:
            print(
                f"  WARNING: wrk counted {expected} answers in the measured run but the "
                f"engine holds {queued} jobs in all"
            )
    return run


def baseline_submit_run(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = Server.baseline(root / "baseline", cpus=[0] if args.pin else None)
    with server:
        return submit_load(server, 1, args)


# --- the two benchmarks ------------------------------------------------------------

Run = Callable[[Path, argparse.Namespace], dict[str, Any]]


def run_rounds(
    root: Path, args: argparse.Namespace, gantry: Run, baseline: Run, show: Callable[..., None]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``args.rounds`` rounds of baseline (unless ``--no-baseline``) then gantry."""
    gantry_runs: list[dict[str, Any]] = []
    base_runs: list[dict[str, Any]] = []
    for i in range(args.rounds):
        if not args.no_baseline:
            base_runs.append(baseline(root / f"r{i}", args))
            show("baseline", base_runs[-1])
        gantry_runs.append(gantry(root / f"r{i}", args))
        show("gantry", gantry_runs[-1])
        c = gantry_runs[-1]["cascade"]
        print(
            f"  {'':9s} cancel of the blocker: {c['jobs']} jobs cancelled in "
            f"{c['engine_s']:.2f} s (engine), {c['db_s']:.2f} s (written); "
            f"RSS then {gantry_runs[-1]['rss_after_cascade_mb']:.0f} MB"
        )
    return gantry_runs, base_runs


def bench_submit(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    print(
        f"\n== 1. submit, one job per request: wrk {args.connections} connections, "
        f"{args.threads} threads, {args.duration:g} s (+{args.warmup:g} s warm-up)"
        + (", server on CPU 0, wrk on CPU 1" if args.pin else "")
    )
    gantry_runs, base_runs = run_rounds(
        root, args, gantry_submit_run, baseline_submit_run, print_load
    )
    g = _median_run(gantry_runs)
    out: dict[str, Any] = {"gantry": _plain(gantry_runs), "baseline": _plain(base_runs)}
    wrk: WrkResult = g["wrk"]
    print("  result" + (f" (median of {args.rounds} rounds)" if args.rounds > 1 else "") + ":")
    checks = [
        check(
            "gantry submit rate",
            f"{wrk.rps:.0f} jobs/s",
            f">= {SUBMIT_TARGET:.0f}",
            wrk.rps >= SUBMIT_TARGET,
        ),
        check("non-2xx answers and socket errors", str(wrk.errors), "0", wrk.errors == 0),
    ]
    print(
        f"         p50 {wrk.p50_ms:.2f} ms, p99 {wrk.p99_ms:.2f} ms; server "
        f"{g['server_cores']:.2f} cores, {g['server_cpu_us_per_req']:.0f} CPU-us/request, "
        f"RSS {g['rss_mb']:.0f} MB; cascade {g['cascade']['db_s']:.2f} s for "
        f"{g['cascade']['jobs']} jobs"
    )
    if base_runs:
        b = _median_run(base_runs)
        ratio = wrk.rps / b["wrk"].rps
        out["ratio"] = ratio
        print(
            f"         baseline {b['wrk'].rps:.0f} req/s (p50 {b['wrk'].p50_ms:.2f} ms, "
            f"p99 {b['wrk'].p99_ms:.2f} ms, {b['server_cpu_us_per_req']:.0f} CPU-us/request); "
            f"gantry/baseline = {ratio:.2f} (CPU per request: "
            f"{g['server_cpu_us_per_req'] / b['server_cpu_us_per_req']:.2f}x)"
        )
    out["checks"] = checks
    return out


def batch_bodies(blocker: int, count: int, size: int) -> list[bytes]:
    """``count`` encoded batch bodies of ``size`` jobs (encoded before any clock starts)."""
    body = submit_body(blocker)

    def encode(batch: int) -> bytes:
        jobs = [{**body, "name": f"b{batch}_{i}"} for i in range(size)]
        return httpx.Request("POST", "/", json={"jobs": jobs}).read()

    return [encode(b + 1) for b in range(count)]


def send_batches(server: Server, client: httpx.Client, bodies: list[bytes]) -> dict[str, Any]:
    """POST the bodies one after the other (the first warms up, uncounted); rate,
    per-batch times, server CPU."""
    headers = {"content-type": "application/json"}
    warm = client.post(f"{JOBS}/batch", content=bodies[0], headers=headers)  # not counted
    warm.raise_for_status()
    bodies = bodies[1:]
    times = []
    jobs = 0
    before = server.sample()
    begin = time.perf_counter()
    for data in bodies:
        t0 = time.perf_counter()
        answer = client.post(f"{JOBS}/batch", content=data, headers=headers)
        times.append(time.perf_counter() - t0)
        if answer.status_code != 201:
            raise SystemExit(f"batch answered {answer.status_code}: {answer.text[:500]}")
        jobs += len(answer.json()["jobs"])
    elapsed = time.perf_counter() - begin
    after = server.sample()
    cpu_s, cores = after.cpu_since(before)
    return {
        "jobs": jobs,
        "seconds": elapsed,
        "jobs_per_s": jobs / elapsed,
        "batch_s": times,
        "server_cpu_s": cpu_s,
        "server_cores": cores,
        "rss_mb": after.rss_mb,
        "peak_rss_mb": server.peak_rss_mb(),
    }


def print_batches(label: str, run: dict[str, Any]) -> None:
    times = run["batch_s"]
    print(
        f"  {label:9s} {run['jobs']} jobs in {run['seconds']:.2f} s: "
        f"{run['jobs_per_s']:.0f} jobs/s; per batch min {min(times) * 1e3:.0f} / median "
        f"{statistics.median(times) * 1e3:.0f} / max {max(times) * 1e3:.0f} ms; server "
        f"{run['server_cores']:.2f} cores, {run['server_cpu_s'] / run['jobs'] * 1e6:.0f} "
        f"CPU-us per job, RSS {run['rss_mb']:.0f} MB"
    )


def gantry_batch_run(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = Server.gantry(root / "batch", cpus=[0] if args.pin else None, label="gantry-batch")
    with server, httpx.Client(base_url=server.base_url, timeout=300) as client:
        blocker = submit_blocker(client)
        bodies = batch_bodies(blocker, args.batches + 1, args.batch_size)
        run = send_batches(server, client, bodies)
        run["cascade"] = cancel_cascade(client, blocker)
        run["rss_after_cascade_mb"] = server.sample().rss_mb
    return run


def baseline_batch_run(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    server = Server.baseline(root / "baseline-batch", cpus=[0] if args.pin else None)
    with server, httpx.Client(base_url=server.base_url, timeout=300) as client:
        return send_batches(server, client, batch_bodies(1, args.batches + 1, args.batch_size))


def bench_batch(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    n, size = args.batches, args.batch_size
    print(
        f"\n== 2. batch submit: {n} batches of {size} jobs, one client, one after the other"
        + ("" if args.no_baseline else "; baseline: the same bodies into bench/baseline_app.py")
    )
    gantry_runs, base_runs = run_rounds(
        root, args, gantry_batch_run, baseline_batch_run, print_batches
    )
    rate = statistics.median(r["jobs_per_s"] for r in gantry_runs)
    out: dict[str, Any] = {"gantry": gantry_runs, "baseline": base_runs, "jobs_per_s": rate}
    print("  result" + (f" (median of {args.rounds} rounds)" if args.rounds > 1 else "") + ":")
    if base_runs:
        base = statistics.median(r["jobs_per_s"] for r in base_runs)
        out["baseline_jobs_per_s"] = base
        out["ratio"] = rate / base
        print(
            f"         gantry {rate:.0f} jobs/s, baseline {base:.0f} jobs/s: "
            f"gantry/baseline = {rate / base:.2f}"
        )
    out["checks"] = [
        check(
            "batch submit rate",
            f"{rate:.0f} jobs/s",
            f">= {BATCH_TARGET:.0f}",
            rate >= BATCH_TARGET,
        )
    ]
    return out


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["wrk"].rps)
    return ordered[(len(ordered) - 1) // 2]


def _plain(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "wrk": r["wrk"].as_dict()} for r in runs]


def add_load_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk before it")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=1, help="repeat; the median counts")
    parser.add_argument(
        "--pin", action="store_true", help="server on CPU 0, wrk on CPU 1 (taskset)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the data directories")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(parser)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--only", choices=("submit", "batch"))
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    ensure_wrk()
    with scratch_dir("gantry-bench-api-", keep=args.keep) as root:
        if args.only in (None, "submit"):
            results["submit"] = bench_submit(root, args)
        if args.only in (None, "batch"):
            results["batch"] = bench_batch(root, args)
    checks = [c for part in ("submit", "batch") for c in results.get(part, {}).get("checks", [])]
    finish("bench_api", results, checks)


if __name__ == "__main__":
    main()
