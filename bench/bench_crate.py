"""How big an instrument job's RO-Crate can get: time and peak memory of one export.

An instrument job's data as the server stores it (``data/<id>/<role>.jsonl``,
the job's ``meta.json``) is written for ``--samples`` samples of one role,
then each of these runs in a fresh process, ``--rounds`` times (median):

- ``netcdf``: the NetCDF alone (what ``GET /jobs/{id}/data?format=netcdf`` makes);
- ``crate``: the whole crate (NetCDF, CSV, metadata, zip) via ``build_crate``,
  which ``GET /jobs/{id}/crate`` runs on a worker thread.

Peak memory is the child's ``ru_maxrss``; the zip is written to a temporary
file, so the crate's cost above the NetCDF's is what its own code adds.

    .venv/bin/python bench/bench_crate.py [--samples 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

CHILD = """
import json, resource, sys, time
from datetime import datetime
from pathlib import Path
from gantry.export.chain import ExportJob
from gantry.export.crate import build_crate
from gantry.instruments.export import netcdf_file

what, directory = sys.argv[1], Path(sys.argv[2])
row = json.loads((directory / "row.json").read_text())
for key in ("created_at", "started_at", "ended_at"):
    row[key] = datetime.fromisoformat(row[key])
started = time.perf_counter()
if what == "netcdf":
    out = netcdf_file(directory, row)
else:
    job = ExportJob(row=row, depends_on=[], events=[], data_dir=directory)
    out = build_crate([job], row["id"], "http://127.0.0.1:8000/api/v1")
seconds = time.perf_counter() - started
size = out.stat().st_size
out.unlink()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "bytes": size, "peak_rss": rss}))
"""


def write_job(directory: Path, samples: int) -> None:
    """One role's samples as the data store writes them, in 100k-line chunks."""
    directory.mkdir(parents=True)
    start = time.time() - samples * 0.01
    with (directory / "counter.jsonl").open("w") as out:
        for first in range(0, samples, 100_000):
            out.write(
                "".join(
                    f'{{"uts":{start + i * 0.01!r},"task":0,"task_name":null,'
                    f'"technique":"count","values":{{"val":{float(i)!r},"delay":0.01}},'
                    '"units":{"delay":"s"}}\n'
                    for i in range(first, min(samples, first + 100_000))
                )
            )
    meta = {
        "job_id": 1,
        "job_name": "bench",
        "attempt": 1,
        "pipeline": "pip-1",
        "sample": {"name": "S1"},
        "method": [{"component_role": "counter", "technique_name": "count"}],
        "components": {
            "counter": {
                "device": "counter",
                "driver": "example_counter",
                "address": "lab",
                "channel": "1",
                "constants": {},
                "software": {},
            }
        },
    }
    (directory / "meta.json").write_text(json.dumps(meta))
    now = datetime.now(UTC).isoformat()
    row = {
        "id": 1,
        "name": "bench",
        "kind": "instrument",
        "backend": "instrument",
        "state": "completed",
        "attempt": 1,
        "payload": {"sample": meta["sample"], "method": meta["method"]},
        "created_at": now,
        "started_at": now,
        "ended_at": now,
        "env": {},
        "outputs": [],
    }
    (directory / "row.json").write_text(json.dumps(row))


def run(what: str, directory: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, what, str(directory)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-crate-") as root:
        directory = Path(root) / "data" / "1"
        write_job(directory, args.samples)
        stored = (directory / "counter.jsonl").stat().st_size
        print(f"{args.samples} samples, {stored / 1e6:.1f} MB stored")
        for what in ("netcdf", "crate"):
            rounds = [run(what, directory) for _ in range(args.rounds)]
            seconds = statistics.median(r["seconds"] for r in rounds)
            peak = statistics.median(r["peak_rss"] for r in rounds)
            size = rounds[0]["bytes"]
            print(
                f"{what:7s} median {seconds:6.2f} s  peak RSS {peak / 2**20:7.0f} MiB  "
                f"output {size / 1e6:7.1f} MB  ({args.rounds} rounds)"
            )


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
