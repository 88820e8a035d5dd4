"""Driver runtime benchmark: many example_counter components sampling fast.

Target (the server's load): 50 components x 10 ms = 5,000 samples/s in one
process, using at most one core, with no sample lost.

    .venv/bin/python bench/bench_drivers.py [--components 50] [--interval 0.01]
                                            [--duration 10] [--drain 0.5]

Runs every component's task at once, drains every component's cache each
``--drain`` seconds (as the server polls), and reports samples collected vs
expected, ticks missed, the spread of sampling intervals and the CPU time of
the whole process (event loop plus any threads).
"""

from __future__ import annotations

import argparse
import itertools
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    add_nice_arg,
    apply_nice,
    check,
    machine_info,
    print_machine,
    write_results,
)

from gantry.drivers.example_counter import DriverInterface
from gantry.drivers.interface_2_0 import Sample, Task, TaskInfo
from gantry.drivers.testing import running


async def bench(components: int, interval: float, duration: float, drain: float) -> dict[str, Any]:
    driver = DriverInterface()
    keys = [("bench", str(i)) for i in range(components)]
    for address, channel in keys:
        assert (await driver.cmp_register(address, channel)).success
    task = Task(
        component_role="counter",
        technique_name="count",
        max_duration=duration,
        sampling_interval=interval,
    )
    collected: dict[tuple[str, str], list[Sample]] = {k: [] for k in keys}
    ids: dict[tuple[str, str], str] = {}

    async def drain_all() -> None:
        for key in keys:
            collected[key] += (await driver.task_data(*key)).data

    async with running(driver):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for key in keys:
            ids[key] = (await driver.task_submit(*key, task)).data.id
        while True:
            await anyio.sleep(drain)
            await drain_all()
            infos: list[TaskInfo] = [(await driver.task_status(*k, ids[k])).data for k in keys]
            if all(i.state.is_final for i in infos):
                break
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await drain_all()

    expected_each = math.ceil(duration / interval - 1e-9)
    gaps = [b.uts - a.uts for samples in collected.values() for a, b in itertools.pairwise(samples)]
    qs = statistics.quantiles(gaps, n=100)
    return {
        "components": components,
        "interval_s": interval,
        "duration_s": duration,
        "expected": expected_each * components,
        "collected": sum(len(s) for s in collected.values()),
        "reported_by_tasks": sum(i.samples for i in infos),
        "missed_ticks": sum(i.missed for i in infos),
        "states": sorted({str(i.state) for i in infos}),
        "gap_ms_p50": round(qs[49] * 1e3, 3),
        "gap_ms_p99": round(qs[98] * 1e3, 3),
        "gap_ms_max": round(max(gaps) * 1e3, 3),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_cores_used": round(cpu / wall, 3),
        "cpu_us_per_sample": round(cpu / max(1, sum(len(s) for s in collected.values())) * 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--components", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=0.5)
    add_nice_arg(parser)
    args = parser.parse_args()
    info = machine_info()
    apply_nice(args.nice, info)
    print_machine(info)
    result = anyio.run(bench, args.components, args.interval, args.duration, args.drain)
    print(
        f"{result['components']} components x {args.interval * 1e3:g} ms x {args.duration:g} s: "
        f"{result['collected']} of {result['expected']} samples, {result['missed_ticks']} "
        f"ticks missed, {result['cpu_s']} CPU s in {result['wall_s']} s "
        f"({result['cpu_us_per_sample']} us/sample); interval p50 {result['gap_ms_p50']} ms, "
        f"p99 {result['gap_ms_p99']} ms, max {result['gap_ms_max']} ms"
    )
    checks = [
        check(
            "samples collected",
            f"{result['collected']} / {result['expected']}",
            "all",
            result["collected"] == result["expected"],
        ),
        check(
            "CPU used",
            f"{result['cpu_cores_used']} cores",
            "<= 1 core",
            result["cpu_cores_used"] <= 1.0,
        ),
    ]
    path = write_results("bench_drivers", {"machine": info, "result": result, "checks": checks})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
