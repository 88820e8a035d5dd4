"""Reliability figures (issue 5): recovery after kill -9 with 10,000 unfinished
jobs, and 100 concurrent clients submitting, listing and following logs.

    .venv/bin/python bench/bench_reliability.py [--jobs 10000] [--clients 100] [--seconds 60]

Targets: serving again with every state reconciled within 5 s of the restart;
the load run has 0 errors (no 5xx, no "database is locked"); p99 latency and
RSS before/after are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import httpx
from common import Server, machine_info, percentile, print_machine

ACTIVE = ("queued", "submitted", "running", "cancelling")


def count_states(client: httpx.Client, ids: set[int]) -> Counter[str]:
    """States of ``ids``, read page by page through the list endpoint."""
    found: Counter[str] = Counter()
    before = None
    while True:
        params: dict[str, Any] = {"limit": 1000}
        if before:
            params["before"] = before
        page = client.get("/api/v1/jobs", params=params).json()
        found.update(j["state"] for j in page["items"] if j["id"] in ids)
        before = page["next_before"]
        if before is None:
            return found


def recovery(root: Path, jobs: int) -> dict[str, Any]:
    server = Server.gantry(root / "recovery", env={"GANTRY_BACKEND__LOCAL__MAX_CORES": "2"})
    server.start()
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        blocker = client.post("/api/v1/jobs", json={"name": "blocker", "spec": "sleep 600"})
        blocker_id = blocker.json()["id"]
        sleepers = client.post(
            "/api/v1/jobs/batch",
            json={"jobs": [{"name": f"sleeper_{i}", "spec": "sleep 600"} for i in range(100)]},
        ).json()["jobs"]
        ids = {blocker_id, *(j["id"] for j in sleepers)}
        for start in range(0, jobs - len(ids), 2000):
            size = min(2000, jobs - len(ids))
            batch = client.post(
                "/api/v1/jobs/batch",
                json={
                    "jobs": [
                        {"name": f"queued_{start + i}", "spec": "true", "depends_on": [blocker_id]}
                        for i in range(size)
                    ]
                },
            ).json()["jobs"]
            ids.update(j["id"] for j in batch)
        time.sleep(1.0)
        before = count_states(client, ids)
    assert server.proc is not None
    server.proc.kill()  # kill -9: no shutdown code runs
    server.proc.wait()
    server.proc = None
    started = time.monotonic()
    server.start()
    serving = time.monotonic() - started
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        after = count_states(client, ids)
        health = client.get("/healthz").json()
        client.post(f"/api/v1/jobs/{blocker_id}/cancel")
        for job in sleepers:
            client.post(f"/api/v1/jobs/{job['id']}/cancel")
    server.stop()
    unfinished = sum(before[s] for s in ACTIVE)
    return {
        "unfinished_jobs": unfinished,
        "states_before_kill": dict(before),
        "states_after_restart": dict(after),
        "active_after_restart": health["active_jobs"],
        "restart_to_serving_s": round(serving, 2),
        "target_s": 5.0,
        "pass": serving <= 5.0 and sum(after[s] for s in ACTIVE) == unfinished,
    }


async def load(root: Path, clients: int, seconds: float) -> dict[str, Any]:
    # Cores for the blocker and both chatty jobs: followed logs must be growing.
    server = Server.gantry(root / "load", env={"GANTRY_BACKEND__LOCAL__MAX_CORES": "3"})
    server.start()
    rss_before = server.sample().rss_mb
    latencies: dict[str, list[float]] = {"submit": [], "list": [], "follow": []}
    outcomes: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as http:
        blocker = (await http.post("/api/v1/jobs", json={"spec": "sleep 600"})).json()["id"]
        chatty = [
            (
                await http.post(
                    "/api/v1/jobs",
                    json={
                        "name": f"chatty_{i}",
                        "spec": f"for i in $(seq {int(seconds * 10) + 100}); do echo line $i; "
                        "sleep 0.1; done",
                    },
                )
            ).json()["id"]
            for i in range(2)
        ]
        deadline = time.monotonic() + seconds

        async def one_client(n: int) -> None:
            rng = random.Random(n)
            while time.monotonic() < deadline:
                kind = rng.choices(["submit", "list", "follow"], [4, 4, 2])[0]
                started = time.perf_counter()
                try:
                    if kind == "submit":
                        r = await http.post(
                            "/api/v1/jobs",
                            json={"name": f"load_{n}", "spec": "true", "depends_on": [blocker]},
                        )
                        status = r.status_code
                    elif kind == "list":
                        r = await http.get("/api/v1/jobs", params={"state": "queued", "limit": 50})
                        status = r.status_code
                    else:
                        url = f"/api/v1/jobs/{rng.choice(chatty)}/logs"
                        async with http.stream("GET", url, params={"follow": "true"}) as r:
                            status = r.status_code
                            started = time.perf_counter()  # time to the first line
                            with anyio.move_on_after(2):
                                async for _ in r.aiter_lines():
                                    if started:
                                        latencies[kind].append(time.perf_counter() - started)
                                        started = 0.0
                except httpx.HTTPError as exc:
                    outcomes[f"error {type(exc).__name__}"] += 1
                    continue
                if kind != "follow":
                    latencies[kind].append(time.perf_counter() - started)
                outcomes["5xx" if status >= 500 else "ok" if status < 400 else str(status)] += 1

        await asyncio.gather(*(one_client(n) for n in range(clients)))
        await http.post(f"/api/v1/jobs/{blocker}/cancel")
        for job_id in chatty:
            await http.post(f"/api/v1/jobs/{job_id}/cancel")
    rss_after = server.sample().rss_mb
    log = server.log_path.read_text(errors="replace")
    server.stop()
    errors = sum(n for k, n in outcomes.items() if k != "ok")
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": sum(outcomes.values()),
        "outcomes": dict(outcomes),
        "errors": errors,
        "database_locked_in_log": log.count("database is locked"),
        "p50_ms": {k: round(percentile(v, 50) * 1000, 1) for k, v in latencies.items() if v},
        "p99_ms": {
            k: round(percentile(v, 99) * 1000, 1)
            for k, v in latencies.items()
            if v and k != "follow"
        },
        "rss_mb_before": round(rss_before, 1),
        "rss_mb_after": round(rss_after, 1),
        "pass": errors == 0 and "database is locked" not in log,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    print_machine(machine_info())
    with tempfile.TemporaryDirectory(prefix="gantry-bench-") as tmp:
        root = Path(tmp)
        result = {"recovery": recovery(root, args.jobs)}
        print(json.dumps(result["recovery"], indent=2))
        result["load"] = asyncio.run(load(root, args.clients, args.seconds))
        print(json.dumps(result["load"], indent=2))
    out = Path(__file__).parent / "results" / "reliability.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
