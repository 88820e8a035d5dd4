"""tomato's 10-pipeline counter workload, run by gantry with the same unmodified driver.

Target (issue #9): 10 pipelines x 10 s at 10 Hz with ``tomato-example-counter``
(PyPI, ``tomato==2.2``), one instrument job per pipeline, through a real
server (uvicorn subprocess, SQLite): 0 lost jobs, 0 lost points, CPU
<= 1.3 s and RSS <= 200 MB in total (tomato 2.2: 13-14 CPU-s, 1.2 GB, and
it loses jobs). "In total" is the server and its driver processes (the
tomato driver runs in one of its own, a child of the server), CPU summed
and peak RSS summed (which counts the pages they share twice; the sum of
their PSS at the end of the run, which does not, is reported beside it).

    .venv/bin/python bench/bench_tomato.py [--pipelines 10] [--duration 10]
        [--interval 0.1] [--nice N]

"Lost points": tomato's counter samples once per interval, so every stored
task's timestamps run from about one interval after its start to its end
with no gap of two intervals; each longer gap counts the points missing in
it, and a task with fewer than ``duration / interval - 1`` points counts the
rest. The devices file's ``pollrate`` (s between drains) is tomato's
default, 1 s, unless ``--pollrate`` says otherwise. CPU is from the first
submit to the last job's end, and also from the processes' start;
``--in-process`` runs the driver inside the server
(``[drivers."tomato:example_counter"] in_process = true``) for comparison, and
``--bare`` first runs tomato's driver alone (its classes driven from a bare
loop in a process of its own, no gantry at all) for its own CPU, the floor.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parent))

import itertools
import time

from bench_instruments import devices_toml as instruments_devices
from bench_instruments import job, make_ready
from common import (
    Server,
    add_nice_arg,
    check,
    finish,
    peak_rss_mb,
    proc_sample,
    scratch_dir,
    start_results,
)

API = "/api/v1"
CPU_TARGET_S = 1.3
FINAL = ("completed", "failed", "cancelled")
RSS_TARGET_MB = 200.0


DRIVER = "tomato:example_counter"


def devices_toml(pipelines: int, in_process: bool = False, pollrate: float = 1.0) -> str:
    """bench_instruments' devices file, with tomato's counter package as the driver."""
    native = 'driver = "example_counter"'
    ours = f'driver = "{DRIVER}"\npollrate = {pollrate:g}'
    text = instruments_devices(pipelines).replace(native, ours)
    if in_process:
        text += f'\n[drivers."{DRIVER}"]\nin_process = true\n'
    return text


def wait_all_ended(
    client: httpx.Client, ids: list[int], timeout: float
) -> dict[int, dict[str, Any]]:
    """The jobs once all ended, from one list request every 0.25 s (not one per job)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = client.get(f"{API}/jobs", params={"name": "tomato", "limit": 1000}).json()
        found = {r["id"]: r for r in rows["items"] if r["id"] in ids}
        if len(found) == len(ids) and all(r["state"] in FINAL for r in found.values()):
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"the jobs did not all end in {timeout:.0f} s")
        time.sleep(0.25)


def pss_mb(pid: int) -> float:
    """Proportional set size: pages shared between the processes are counted once in all."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


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
        # The driver processes are the server's children (the local backend runs none idle).
        pids = [server.pid] + [p.pid for p in psutil.Process(server.pid).children(recursive=True)]
        before = [proc_sample(pid) for pid in pids]
        ids = [
            client.post(f"{API}/jobs", json=job(interval, duration, f"tomato{i}")).json()["id"]
            for i in range(n)
        ]
        # Not polled meanwhile: the server's CPU is the workload's, not the bench's.
        time.sleep(duration)
        ended = wait_all_ended(client, ids, 60)
        after = [proc_sample(pid) for pid in pids]
        rss_each = [peak_rss_mb(pid) for pid in pids]
        pss = sum(pss_mb(pid) for pid in pids)
        stamps = {
            i: [
                s["uts"]
                for s in client.get(f"{API}/jobs/{i}/data", params={"limit": 100_000}).json()[
                    "roles"
                ][0]["samples"]
            ]
            for i in ids
        }
    cpu_s = sum(a.cpu_s - b.cpu_s for a, b in zip(after, before, strict=True))
    cores = cpu_s / max(after[0].at - before[0].at, 1e-9)
    since_start = sum(a.cpu_s for a in after)
    rss = sum(rss_each)
    server_cpu = after[0].cpu_s - before[0].cpu_s
    lost_jobs = {i: r["reason"] for i, r in ended.items() if r["state"] != "completed"}
    lost = {i: lost_points(s, interval, duration) for i, s in stamps.items()}
    points = sum(len(s) for s in stamps.values())
    print(
        f"{n} pipelines x {duration:g} s at {1 / interval:g} Hz (tomato-example-counter): "
        f"{n - len(lost_jobs)} of {n} jobs completed, {points} points stored, "
        f"CPU {cpu_s:.2f} s over the run ({cores:.2f} cores; server {server_cpu:.2f} s, "
        f"{len(pids) - 1} driver processes {cpu_s - server_cpu:.2f} s), "
        f"{since_start:.2f} s since the processes started, peak RSS {rss:.0f} MB "
        f"(server {rss_each[0]:.0f} MB, drivers {rss - rss_each[0]:.0f} MB); "
        f"PSS at the end {pss:.0f} MB in total"
    )
    checks = [
        check("lost jobs", str(len(lost_jobs)), "0", not lost_jobs),
        check("lost points", str(sum(lost.values())), "0", not any(lost.values())),
        check(
            "CPU in total (server + driver processes)",
            f"{cpu_s:.2f} s",
            f"<= {CPU_TARGET_S:g} s",
            cpu_s <= CPU_TARGET_S,
        ),
        check(
            "peak RSS in total (server + driver processes)",
            f"{rss:.0f} MB",
            f"<= {RSS_TARGET_MB:g} MB",
            rss <= RSS_TARGET_MB,
        ),
    ]
    return {
        "points": points,
        "points_per_job": {i: len(s) for i, s in stamps.items()},
        "lost_points": lost,
        "lost_jobs": lost_jobs,
        "in_process": args.in_process,
        "driver_processes": len(pids) - 1,
        "cpu_s": cpu_s,
        "server_cpu_s": server_cpu,
        "cpu_s_since_start": since_start,
        "rss_mb": rss,
        "rss_mb_each": rss_each,
        "pss_mb": pss,
        "checks": checks,
    }


BARE = """
import json, resource, sys, time
import tomato_example_counter as m
from tomato.models import Task
n, interval, duration, pollrate = int(sys.argv[1]), *map(float, sys.argv[2:5])
driver = m.DriverInterface({})
keys = [dict(address="bare", channel=str(i)) for i in range(n)]
for k in keys:
    driver.cmp_register(**k)
task = Task(component_role="counter", technique_name="count",
            max_duration=duration, sampling_interval=interval)
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
before, points = cpu(), 0
for k in keys:
    driver.task_start(**k, task=task)
end = time.monotonic() + duration + 2 * interval
while time.monotonic() < end:
    time.sleep(pollrate)
    for k in keys:
        data = driver.task_data(**k).data
        points += 0 if data is None else data.sizes["uts"]
print(json.dumps({"cpu_s": cpu() - before, "points": points}))
"""


def bare(args: argparse.Namespace) -> dict[str, Any]:
    """tomato's driver alone, driven from a bare loop in a process of its own: its own cost."""
    argv = [str(args.pipelines), str(args.interval), str(args.duration), str(args.pollrate)]
    out = subprocess.run(
        [sys.executable, "-c", BARE, *argv], check=True, capture_output=True, text=True
    )
    found: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    print(
        f"the driver alone (no gantry, a bare loop draining every {args.pollrate:g} s): "
        f"{found['points']} points, CPU {found['cpu_s']:.2f} s"
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", type=int, default=10)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument(
        "--pollrate",
        type=float,
        default=1.0,
        help="s between data drains, the devices file's pollrate (tomato's default: 1)",
    )
    parser.add_argument(
        "--in-process", action="store_true", help="the driver inside the server (comparison)"
    )
    parser.add_argument(
        "--bare", action="store_true", help="also run the driver alone, as the same-run floor"
    )
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    if args.bare:
        results["bare"] = bare(args)
    with scratch_dir("gantry-bench-tomato-") as root:
        data_dir = root / "var"
        data_dir.mkdir()
        devices = root / "devices.toml"
        devices.write_text(devices_toml(args.pipelines, args.in_process, args.pollrate))
        with Server.gantry(data_dir, env={"GANTRY_DEVICES_FILE": str(devices)}) as server:
            results["run"] = run(server, args)
    finish("bench_tomato", results, results["run"]["checks"])


if __name__ == "__main__":
    main()
