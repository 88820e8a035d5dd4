"""A 1,000-target gwf workflow: ``gantry run`` against ``gwf run`` with gwf's local backend.

The same ``workflow.py`` (N independent targets whose spec is ``true``) is
run both ways on this machine, in alternating rounds:

- gwf: ``gwf workers -n <cores>`` is started first (not timed); the clock
  runs from launching ``gwf run`` until gwf's workers report every target of
  the round completed (asked through gwf's own ``Client.status()``).
- gantry: a server on the local backend is started first (not timed); the
  clock runs from launching ``gantry run workflow.py`` until it exits, which
  it does once every target ended (it follows the batch to the end).

Target: gantry's throughput (targets per second) is at least 2x gwf's, as the
median of the per-round ratios.

Both commands run with Python's bytecode cache on (``PYTHONDONTWRITEBYTECODE``
dropped) and after one untimed warm-up each, as installed tools do: gwf's
modules are compiled at install, and gantry's would otherwise be compiled
again at every start. Each gantry round is split by the server's own
timestamps: the CLI before the batch (start, workflow load, up-to-date
checks), the server from the first job created to the last one ended, and
the CLI after (following progress to the end and exiting).

    .venv/bin/python bench/bench_gwf.py [--targets 1000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import Server, add_nice_arg, check, finish, free_port, scratch_dir, start_results

TARGET = 2.0
BIN = Path(sys.executable).parent
#: The tools' environment: this one, with the bytecode cache on.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def write_workflow(directory: Path, targets: int, round_no: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "workflow.py"
    path.write_text(
        "from gwf import Workflow\n"
        "gwf = Workflow()\n"
        f"for i in range({targets}):\n"
        f"    gwf.target(f'r{round_no}_t{{i}}', inputs=[], outputs=[]) << 'true'\n"
    )
    return path


class GwfWorkers:
    """``gwf workers`` in ``home``, on a free port, told to gwf by its config file."""

    def __init__(self, home: Path, workers: int) -> None:
        self.home = home
        self.port = free_port()
        (home / ".gwfconf.json").write_text(
            json.dumps({"backend": "local", "local.port": self.port})
        )
        self.proc = subprocess.Popen(
            [str(BIN / "gwf"), "workers", "-n", str(workers), "-p", str(self.port)],
            cwd=home,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not self._completed_or_none():
            if time.monotonic() > deadline:
                raise RuntimeError("gwf workers did not start")
            time.sleep(0.1)

    def _completed_or_none(self) -> dict[str, int] | None:
        from gwf.backends.local import Client, LocalStatus

        try:
            client = Client(("localhost", self.port))
        except OSError:
            return None
        try:
            statuses = client.status()
        finally:
            client.close()
        done = sum(1 for s in statuses.values() if s == LocalStatus.COMPLETED)
        return {"done": done, "total": len(statuses)}

    def completed(self) -> int:
        found = self._completed_or_none()
        return found["done"] if found else 0

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def gwf_round(workers: GwfWorkers, targets: int, round_no: int) -> float:
    write_workflow(workers.home, targets, round_no)
    before = workers.completed()
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "gwf"), "run"], cwd=workers.home, env=ENV, check=True, capture_output=True
    )
    while workers.completed() < before + targets:
        time.sleep(0.05)
    return time.perf_counter() - start


def gantry_round(server: Server, home: Path, targets: int, round_no: int) -> dict[str, float]:
    """The round's wall time and its phases (s), by the server's timestamps."""
    path = write_workflow(home / f"round{round_no}", targets, round_no)
    env = {**ENV, "GANTRY_URL": server.base_url}
    began, start = time.time(), time.perf_counter()
    subprocess.run(
        [str(BIN / "gantry"), "run", str(path)], env=env, check=True, capture_output=True
    )
    wall, ended = time.perf_counter() - start, time.time()
    created, finished = job_span(server, f"r{round_no}_")
    return {
        "wall": wall,
        "cli_before": created - began,
        "server": finished - created,
        "cli_after": ended - finished,
    }


def job_span(server: Server, prefix: str) -> tuple[float, float]:
    """When the first job named ``prefix...`` was created and the last one ended (epoch s)."""
    created, ended = [], []
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        before = None
        while True:
            params: dict[str, str | int] = {"name": prefix, "limit": 1000}
            if before is not None:
                params["before"] = before
            page = client.get("/api/v1/jobs", params=params).json()
            for job in page["items"]:
                created.append(_epoch(job["created_at"]))
                ended.append(_epoch(job["ended_at"]))
            before = page.get("next_before")
            if before is None:
                return min(created), max(ended)


def _epoch(stamp: str) -> float:
    moment = dt.datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def warm_up(server: Server, home: Path, workers: GwfWorkers) -> None:
    """One small untimed run of each tool (gantry's bytecode is cached by it)."""
    gwf_round(workers, 2, 999)
    gantry_round(server, home, 2, 999)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    cores = os.cpu_count() or 1
    rounds = []
    with scratch_dir("bench-gwf-") as scratch:
        (scratch / "gwf").mkdir()
        workers = GwfWorkers(scratch / "gwf", cores)
        server = Server.gantry(scratch / "gantry", env={"GANTRY_DEFAULT_BACKEND": "local"})
        (scratch / "gantry").mkdir()
        server.start()
        try:
            warm_up(server, scratch / "gantry", workers)
            for i in range(args.rounds):
                gwf_s = gwf_round(workers, args.targets, i)
                phases = gantry_round(server, scratch / "gantry", args.targets, i)
                gantry_s = phases["wall"]
                row = {
                    "gwf_s": gwf_s,
                    "gantry_s": gantry_s,
                    "gwf_per_s": args.targets / gwf_s,
                    "gantry_per_s": args.targets / gantry_s,
                    "ratio": gwf_s / gantry_s,
                    "gantry_phases": phases,
                }
                rounds.append(row)
                print(
                    f"round {i}: gwf run {gwf_s:.2f} s ({row['gwf_per_s']:.0f}/s), "
                    f"gantry run {gantry_s:.2f} s ({row['gantry_per_s']:.0f}/s), "
                    f"x{row['ratio']:.2f}; gantry: CLI before the batch "
                    f"{phases['cli_before']:.2f} s, server first created -> last ended "
                    f"{phases['server']:.2f} s, CLI after {phases['cli_after']:.2f} s"
                )
        finally:
            server.stop()
            workers.stop()
    ratio = statistics.median(r["ratio"] for r in rounds)
    results["rounds"] = rounds
    checks = [
        check(
            f"gantry run vs gwf run, {args.targets} targets, {cores} workers",
            f"x{ratio:.2f}",
            f">= x{TARGET}",
            ratio >= TARGET,
        )
    ]
    finish("bench_gwf", results, checks)


if __name__ == "__main__":
    main()
