"""tomato's 10-pipeline counter workload, run by gantry with the same unmodified driver.

Target (issue #9): 10 pipelines x 10 s at 10 Hz with ``tomato-example-counter``
(PyPI, ``tomato==2.2``), one instrument job per pipeline, through a real
server (uvicorn subprocess, SQLite): 0 lost jobs, 0 lost points, server CPU
<= 1.3 s and RSS <= 200 MB in total (tomato 2.2: 13-14 CPU-s, 1.2 GB, and
it loses jobs).

    .venv/bin/python bench/bench_tomato.py [--pipelines 10] [--duration 10]
        [--interval 0.1] [--nice N]

"Lost points": tomato's counter samples once per interval, so every stored
task's timestamps run from about one interval after its start to its end
with no gap of two intervals; each longer gap counts the points missing in
it, and a task with fewer than ``duration / interval - 1`` points counts the
rest. CPU is the server process's (tomato's task threads run inside it),
from the first submit to the last job's end, and also from the process start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools
import time

from bench_instruments import devices_toml as instruments_devices
from bench_instruments import job, make_ready, wait_ended
from common import Server, add_nice_arg, check, finish, scratch_dir, start_results

API = "/api/v1"
CPU_TARGET_S = 1.3
RSS_TARGET_MB = 200.0


def devices_toml(pipelines: int) -> str:
    """bench_instruments' devices file, with tomato's counter package as the driver."""
    native = 'driver = "example_counter"'
    return instruments_devices(pipelines).replace(native, 'driver = "tomato:example_counter"')


def lost_points(stamps: list[float], interval: float, duration: float) -> int:
    """Points missing from one task's timestamps (see the module docstring)."""
    gaps = sum(max(0, round((b - a) / interval) - 1) for a, b in itertools.pairwise(stamps))
    short = max(0, round(duration / interval) - 1 - len(stamps))
    return max(gaps, short)


def run(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    n, interval, duration = args.pipelines, args.interval, args.duration
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        for i in range(n):
            make_ready(client, f"pip-{i}")
        before = server.sample()
        ids = [
            client.post(f"{API}/jobs", json=job(interval, duration, f"tomato{i}")).json()["id"]
            for i in range(n)
        ]
        # Not polled meanwhile: the server's CPU is the workload's, not the bench's.
        time.sleep(duration)
        ended = wait_ended(client, ids, 60)
        after = server.sample()
        stamps = {
            i: [
                s["uts"]
                for s in client.get(f"{API}/jobs/{i}/data", params={"limit": 100_000}).json()[
                    "roles"
                ][0]["samples"]
            ]
            for i in ids
        }
    cpu_s, cores = after.cpu_since(before)
    rss = server.peak_rss_mb()
    lost_jobs = {i: r["reason"] for i, r in ended.items() if r["state"] != "completed"}
    lost = {i: lost_points(s, interval, duration) for i, s in stamps.items()}
    points = sum(len(s) for s in stamps.values())
    print(
        f"{n} pipelines x {duration:g} s at {1 / interval:g} Hz (tomato-example-counter): "
        f"{n - len(lost_jobs)} of {n} jobs completed, {points} points stored, "
        f"server CPU {cpu_s:.2f} s over the run ({cores:.2f} cores), "
        f"{after.cpu_s:.2f} s since the process started, peak RSS {rss:.0f} MB"
    )
    checks = [
        check("lost jobs", str(len(lost_jobs)), "0", not lost_jobs),
        check("lost points", str(sum(lost.values())), "0", not any(lost.values())),
        check("server CPU in total", f"{cpu_s:.2f} s", f"<= {CPU_TARGET_S:g} s", cpu_s <= 1.3),
        check("server RSS", f"{rss:.0f} MB", f"<= {RSS_TARGET_MB:g} MB", rss <= RSS_TARGET_MB),
    ]
    return {
        "points": points,
        "points_per_job": {i: len(s) for i, s in stamps.items()},
        "lost_points": lost,
        "lost_jobs": lost_jobs,
        "cpu_s": cpu_s,
        "cpu_s_since_start": after.cpu_s,
        "rss_mb": rss,
        "checks": checks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.1)
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    with scratch_dir("gantry-bench-tomato-") as root:
        data_dir = root / "var"
        data_dir.mkdir()
        devices = root / "devices.toml"
        devices.write_text(devices_toml(args.pipelines))
        with Server.gantry(data_dir, env={"GANTRY_DEVICES_FILE": str(devices)}) as server:
            results["run"] = run(server, args)
    finish("bench_tomato", results, results["run"]["checks"])


if __name__ == "__main__":
    main()
