"""The container image, built from the repo's Dockerfile and run with podman.

One build per run (scripts/container/build.sh on the local debootstrap base).
A first container serves real command jobs on the local backend and is
stopped with SIGTERM; a second one on the same data volume still has them.
Another, with the image's own settings (0.0.0.0 in a network namespace of its
own), refuses to start until an API token exists.
Root on Debian: scripts/container/install.sh, then base-image.sh (once).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import need

pytestmark = [
    pytest.mark.container,
    # Setup builds the image (about a minute; debootstrap too on a fresh machine).
    pytest.mark.timeout(900),
]

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "container"
DATA_DIR = "/var/lib/gantry"  # the image's GANTRY_DATA_DIR and VOLUME
STOP_TIMEOUT = 10  # podman stop --time: SIGKILL after this
GRACEFUL_WITHIN = 5.0  # a stop by SIGTERM takes about a second; a SIGKILL takes 10
IMAGE = "localhost/gantry:test"
JOB = {"name": "hello", "spec": "echo hello from the container", "backend": "local"}
# Leaves a process in its own session, which ends after the job: PID 1 must reap it.
ORPHAN = {"name": "orphan", "spec": "setsid sleep 0.5 & echo $!", "backend": "local"}
# Exits 0 once /proc/$1 is gone (reaped); a zombie stays there with state Z,
# shown before exit 1.
GONE = (
    'for i in $(seq 50); do [ -e "/proc/$1" ] || exit 0; sleep 0.2; done; '
    'cat "/proc/$1/stat"; exit 1'
)


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """podman with the storage and engine flags the scripts use (from common.sh)."""
    command = ["bash", "-c", '. "$0" && podman_ "$@"', str(SCRIPTS / "common.sh"), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ulimit(kind: int, wanted: int) -> int:
    # podman's defaults exceed this host's hard limits ("setrlimit: Operation
    # not permitted"): ask for no more than we have.
    hard = resource.getrlimit(kind)[1]
    return wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)


@dataclass
class Container:
    name: str
    url: str


def run_flags(volume: str) -> list[str]:
    nofile = ulimit(resource.RLIMIT_NOFILE, 65536)
    nproc = ulimit(resource.RLIMIT_NPROC, 32768)
    return [
        "--volume", f"{volume}:{DATA_DIR}",
        f"--ulimit=nofile={nofile}:{nofile}", f"--ulimit=nproc={nproc}:{nproc}",
        # Podman runs HEALTHCHECK on systemd timers, absent here; the tests
        # run it with `podman healthcheck run` instead.
        "--health-interval", "disable",
    ]  # fmt: skip


def start(image: str, volume: str, name: str) -> Container:
    """Run the image detached on a free loopback port; wait for /healthz."""
    port = free_port()
    podman(
        "run", "--detach", "--name", name, *run_flags(volume),
        # Host network: no CNI/netavark needed; GANTRY_HOST keeps it on loopback.
        "--network", "host", "--env", "GANTRY_HOST=127.0.0.1", "--env", f"GANTRY_PORT={port}",
        image,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Container(name, url)
        except httpx.TransportError:
            pass
        state = podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip()
        if state != "running":
            pytest.fail(f"container {name} is {state}:\n{logs(name)}")
        time.sleep(0.3)
    pytest.fail(f"container {name}: no /healthz within 60 s:\n{logs(name)}")


def logs(name: str) -> str:
    """What the container wrote, stdout then stderr."""
    done = podman("logs", name, check=False)
    return done.stdout + done.stderr


def stop(name: str) -> tuple[float, int]:
    """SIGTERM (SIGKILL after STOP_TIMEOUT); the seconds it took and the exit code."""
    began = time.monotonic()
    podman("stop", "--time", str(STOP_TIMEOUT), name, timeout=STOP_TIMEOUT + 60)
    took = time.monotonic() - began
    code = int(podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout)
    return took, code


def run_job(url: str, body: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit a job and wait until it ends (30 s at most): the job and its stdout."""
    response = httpx.post(f"{url}/api/v1/jobs", json=body, timeout=10)
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    deadline = time.monotonic() + 30
    while job["state"] not in ("completed", "failed", "cancelled"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
        job = httpx.get(f"{url}/api/v1/jobs/{job['id']}", timeout=5).json()
    log: dict[str, Any] = httpx.get(f"{url}/api/v1/jobs/{job['id']}/logs", timeout=10).json()
    return job, log


@pytest.fixture(scope="module")
def names() -> Iterator[list[str]]:
    """Unique names for this run's containers and volume; all removed at the end."""
    made: list[str] = []
    yield made
    for name in reversed(made):
        if name.startswith("container:"):
            podman("rm", "--force", "--time", "0", name.removeprefix("container:"), check=False)
        else:
            podman("volume", "rm", "--force", name.removeprefix("volume:"), check=False)


@pytest.fixture(scope="module")
def image() -> str:
    """gantry's image, built once for this module from the working tree."""
    tools = all(shutil.which(tool) for tool in ("buildah", "podman", "debootstrap", "runc"))
    need(tools, "needs buildah, podman and debootstrap: run scripts/container/install.sh "
         "(Debian, root)")  # fmt: skip
    need(os.geteuid() == 0, "needs root: image storage under /var/cache/gantry-container "
         "and chroot builds (see docs/container.md)")  # fmt: skip
    began = time.monotonic()
    build = subprocess.run(
        [str(SCRIPTS / "build.sh"), IMAGE],
        capture_output=True, text=True, timeout=800, check=False,
    )  # fmt: skip
    if build.returncode != 0:
        pytest.fail(f"build.sh failed ({build.returncode}):\n{build.stdout[-4000:]}"
                    f"\n{build.stderr[-4000:]}")  # fmt: skip
    print(f"image {IMAGE} built in {time.monotonic() - began:.0f} s")
    # Kept (one image in the cache's storage): its layers make the next build fast.
    return IMAGE


@dataclass
class FirstRun:
    """What the first container did, recorded for the tests below to check."""

    uid: str
    health: subprocess.CompletedProcess[str]
    job: dict[str, Any]
    log: dict[str, Any]
    orphan: subprocess.CompletedProcess[str]
    stop_seconds: float
    exit_code: int
    stderr: str  # podman logs keeps the container's streams apart
    logs: str


@pytest.fixture(scope="module")
def volume(names: list[str]) -> str:
    name = f"gantry-test-{uuid.uuid4().hex[:8]}"
    names.append(f"volume:{name}")
    podman("volume", "create", name)
    return name


@pytest.fixture(scope="module")
def first(image: str, volume: str, names: list[str]) -> FirstRun:
    """Start a container, run two jobs through the API, stop it with SIGTERM."""
    name = f"{volume}-first"
    names.append(f"container:{name}")
    began = time.monotonic()
    server = start(image, volume, name)
    print(f"first container up in {time.monotonic() - began:.1f} s")
    uid = podman("exec", name, "id", "-u").stdout.strip()
    health = podman("healthcheck", "run", name, check=False)
    job, log = run_job(server.url, JOB)
    _, orphan_log = run_job(server.url, ORPHAN)
    orphan = podman("exec", name, "sh", "-c", GONE, "sh", orphan_log["text"].strip(), check=False)
    took, code = stop(name)
    stderr = podman("logs", name).stderr
    return FirstRun(uid, health, job, log, orphan, took, code, stderr, logs(name))


def test_runs_as_a_non_root_user(first: FirstRun) -> None:
    assert first.uid.isdigit() and first.uid != "0"


def test_its_healthcheck_passes(first: FirstRun) -> None:
    assert first.health.returncode == 0, first.health.stdout + first.health.stderr


def test_runs_a_command_job_on_the_local_backend(first: FirstRun) -> None:
    assert first.job["state"] == "completed", (first.job, first.logs)
    assert first.job["exit_code"] == 0
    assert first.log["text"] == "hello from the container\n"


def test_reaps_processes_that_jobs_leave_behind(first: FirstRun) -> None:
    # Without an init (tini) as PID 1 the orphan would stay a zombie for good.
    assert first.orphan.returncode == 0, f"not reaped: {first.orphan.stdout}"


def test_sigterm_stops_it_gracefully(first: FirstRun) -> None:
    # Exit 0 well before the timeout: uvicorn shut down; a SIGKILL would be 137 after 10 s.
    assert first.exit_code == 0, first.logs
    assert first.stop_seconds < GRACEFUL_WITHIN, first.logs


def test_logs_json_lines_to_stderr(first: FirstRun) -> None:
    lines = [json.loads(line) for line in first.stderr.splitlines() if line.startswith("{")]
    assert lines, first.logs
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    messages = [line["message"] for line in lines]
    assert any("Application shutdown complete" in m for m in messages), messages


def test_the_data_volume_keeps_jobs_across_containers(
    image: str, volume: str, names: list[str], first: FirstRun
) -> None:
    name = f"{volume}-second"
    names.append(f"container:{name}")
    server = start(image, volume, name)
    listed = httpx.get(f"{server.url}/api/v1/jobs", timeout=10).json()["items"]
    log = httpx.get(f"{server.url}/api/v1/jobs/{first.job['id']}/logs", timeout=10).json()
    took, code = stop(name)
    assert (first.job["id"], "hello", "completed") in [
        (j["id"], j["name"], j["state"]) for j in listed
    ]
    assert log["text"] == "hello from the container\n"
    assert code == 0 and took < GRACEFUL_WITHIN, logs(name)


# Status of GET /api/v1/jobs without a token, then with the one in argv[1].
STATUSES = """
import sys, urllib.error, urllib.request
def status(headers):
    request = urllib.request.Request("http://127.0.0.1:8000/api/v1/jobs", headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=5).status
    except urllib.error.HTTPError as error:
        return error.code
print(status({}), status({"Authorization": "Bearer " + sys.argv[1]}))
"""


def test_its_default_address_needs_an_api_token(image: str, names: list[str]) -> None:
    # The image listens on 0.0.0.0:8000; its own network namespace keeps that
    # off the host's interfaces (checks run inside it with podman exec).
    volume = f"gantry-test-{uuid.uuid4().hex[:8]}"
    names.append(f"volume:{volume}")
    refused, server = f"{volume}-refused", f"{volume}-default"
    names.extend([f"container:{refused}", f"container:{server}"])
    flags = [*run_flags(volume), "--network", "none"]
    podman("volume", "create", volume)

    done = podman("run", "--name", refused, *flags, image, check=False, timeout=60)
    assert done.returncode != 0, done.stdout
    assert "refusing to listen on 0.0.0.0 without API tokens" in done.stderr

    made = podman("run", "--rm", *flags, image, "gantry", "token", "create", "--scope", "admin",
                  "ops", timeout=60)  # fmt: skip
    token = made.stdout.strip().splitlines()[-1]
    podman("run", "--detach", "--name", server, *flags, image)
    deadline = time.monotonic() + 60
    while podman("healthcheck", "run", server, check=False).returncode != 0:
        if time.monotonic() > deadline:
            pytest.fail(f"no healthy server within 60 s:\n{logs(server)}")
        time.sleep(0.5)
    statuses = podman("exec", server, "python3", "-c", STATUSES, token).stdout.split()
    took, code = stop(server)
    assert statuses == ["401", "200"], logs(server)
    assert code == 0 and took < GRACEFUL_WITHIN, logs(server)
