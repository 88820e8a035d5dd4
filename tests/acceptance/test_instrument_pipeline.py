"""Both kinds of job in one graph, through the real server and the real CLI:
count on a counter for 3 s, then a command job (local backend) reads the
exported CSV and checks its row count."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.server import GANTRY, ServerProcess, clean_env, free_port

DEMO = Path(__file__).resolve().parents[2] / "app" / "instruments" / "demo-devices.toml"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path, GANTRY_DEVICES_FILE=str(DEMO))
    proc.start()
    yield proc
    proc.stop()


def gantry(
    server: ServerProcess, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GANTRY, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=server.root,
        env=clean_env(GANTRY_URL=server.url),
    )


def test_count_then_a_command_job_checks_the_exported_csv(server: ServerProcess) -> None:
    assert gantry(server, "pipeline", "load", "pip-counter-1", "S1").returncode == 0
    made = gantry(server, "pipeline", "ready", "pip-counter-1")
    assert made.returncode == 0 and "sample S1, ready" in made.stdout, made.stderr
    payload = server.root / "count.json"
    payload.write_text(
        json.dumps(
            {
                "sample": {"name": "S1", "operator": "acceptance"},
                "method": [
                    {
                        "component_role": "counter",
                        "technique_name": "count",
                        "max_duration": "3 s",
                        "sampling_interval": "100 ms",
                    }
                ],
            }
        )
    )
    submitted = gantry(server, "submit-instrument", str(payload))
    assert submitted.returncode == 0, submitted.stderr
    count_id = submitted.stdout.strip()
    check = server.root / "check.sh"
    check.write_text(
        "set -eu\n"
        f'"{GANTRY}" data {count_id} --format csv -o counts.csv\n'
        "rows=$(($(wc -l < counts.csv) - 1))\n"
        'echo "rows=$rows"\n'
        '[ "$rows" -ge 29 ] && [ "$rows" -le 31 ]\n'
    )
    analysed = gantry(
        server,
        "submit",
        "--after",
        count_id,
        "--name",
        "check_rows",
        "-e",
        f"GANTRY_URL={server.url}",
        "--wait",
        str(check),
        timeout=120,
    )
    assert analysed.returncode == 0, analysed.stderr
    shown = json.loads(gantry(server, "show", count_id, "--json").stdout)
    assert shown["state"] == "completed" and shown["kind"] == "instrument"
    assert shown["reason"] == "1 task completed, 30 samples"
    jobs = json.loads(gantry(server, "list", "--json").stdout)["items"]
    check_job = next(j for j in jobs if j["name"] == "check_rows")
    assert gantry(server, "logs", str(check_job["id"])).stdout == "rows=30\n"
    lines = gantry(server, "data", count_id).stdout.splitlines()
    assert len(lines) == 30 and json.loads(lines[-1])["values"]["val"] == 30.0
    nc = server.root / "count.nc"
    assert gantry(server, "data", count_id, "--format", "netcdf", "-o", str(nc)).returncode == 0
    assert nc.read_bytes()[:3] == b"\x89HD"
    pipes = gantry(server, "pipelines")
    row = next(line for line in pipes.stdout.splitlines() if line.startswith("pip-counter-1"))
    assert row.split()[-3:] == ["S1", "no", "-"]


def test_cli_reads_and_sets_components(server: ServerProcess) -> None:
    listed = gantry(server, "components")
    assert (
        listed.returncode == 0 and "counter/1" in listed.stdout and "machine/cpu" in listed.stdout
    )
    done = gantry(server, "component", "set", "counter", "1", "delay", "20 ms")
    assert (done.returncode, done.stdout) == (0, "delay = 0.02 s\n"), done.stderr
    assert gantry(server, "component", "get", "counter", "1", "delay").stdout == "0.02 s\n"
    bad = gantry(server, "component", "set", "counter", "1", "delay", "2 kg")
    assert bad.returncode == 2 and "units of [mass]" in bad.stderr
    measured = gantry(server, "component", "measure", "machine", "memory")
    assert measured.returncode == 0 and "percent = " in measured.stdout
    drivers = gantry(server, "drivers")
    assert any(line.split()[:2] == ["psutil", "yes"] for line in drivers.stdout.splitlines())


def test_serve_refuses_a_malformed_devices_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "devices.toml"
    bad.write_text(DEMO.read_text().replace('driver = "psutil"', 'driver = "psutill"'))
    done = subprocess.run(
        [GANTRY, "serve", "--port", str(free_port()), "--data-dir", str(tmp_path / "var")],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(GANTRY_DEVICES_FILE=str(bad)),
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: devices file {bad}, line 15: devices[1].driver: ")
    assert "no driver named 'psutill'" in done.stderr
