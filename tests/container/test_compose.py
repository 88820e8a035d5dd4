"""deploy/compose.yaml brought up for real with podman-compose: gantry on PostgreSQL.

Both images are built from the repository (scripts/container/build.sh on the
local debootstrap base; PostgreSQL from Debian's package, no registry). A
token is made with ``compose run``, a job is submitted over HTTP through the
published port and completes; the stack goes down (volumes kept) and up
again as new containers, and the job, its log and its count in /metrics are
still there. Root on Debian, like tests/container/test_image.py.
"""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import need
from tests.container.test_image import IMAGE, SCRIPTS, free_port, podman, ulimit

pytestmark = [pytest.mark.container, pytest.mark.timeout(900)]

REPO = SCRIPTS.parents[1]
COMPOSE = REPO / "deploy" / "compose.yaml"
POSTGRES_IMAGE = "localhost/gantry-postgres:test"
JOB = {"name": "composed", "spec": "echo hello from compose", "backend": "local"}


def podman_compose() -> str | None:
    """podman-compose on PATH or beside this Python (the test extras install it)."""
    beside = Path(sys.executable).with_name("podman-compose")
    return shutil.which("podman-compose") or (str(beside) if beside.exists() else None)


def build(tag: str, *context: str) -> None:
    done = subprocess.run(
        [str(SCRIPTS / "build.sh"), tag, *context],
        capture_output=True, text=True, timeout=800, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"build.sh {tag} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")


@dataclass
class Stack:
    """One compose project: its name, its environment, and how to run podman-compose."""

    command: list[str]
    env: dict[str, str]
    project: str
    url: str
    token: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.command, *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"podman-compose {' '.join(args)} exited {done.returncode}:\n"
                        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")  # fmt: skip
        return done

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def healthy(self, service: str, within: float = 60) -> None:
        """Run the service's compose health check until it passes (no timers here)."""
        name = self.container(service)
        deadline = time.monotonic() + within
        while podman("healthcheck", "run", name, check=False).returncode != 0:
            if time.monotonic() > deadline:
                logs = podman("logs", name, check=False)
                pytest.fail(f"{service} not healthy in {within} s:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.5)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", headers=self.headers, timeout=10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tools = all(shutil.which(t) for t in ("buildah", "podman", "debootstrap", "runc"))
    need(tools, "needs buildah, podman and debootstrap: run scripts/container/install.sh "
         "(Debian, root)")  # fmt: skip
    need(os.geteuid() == 0, "needs root: image storage under /var/cache/gantry-container")
    compose = podman_compose()
    need(compose is not None, "needs podman-compose: pip install podman-compose "
         "(in the test extras)")  # fmt: skip
    assert compose is not None
    build(IMAGE)
    build(POSTGRES_IMAGE, str(REPO / "deploy" / "postgres"))
    # podman-compose runs podman through the scripts' podman_ (private storage, runc).
    wrapper = tmp_path_factory.mktemp("compose") / "podman"
    wrapper.write_text(f'#!/bin/bash\n. "{SCRIPTS / "common.sh"}"\npodman_ "$@"\n')
    wrapper.chmod(0o755)
    nofile = ulimit(resource.RLIMIT_NOFILE, 65536)
    nproc = ulimit(resource.RLIMIT_NPROC, 32768)
    project = f"gantry-compose-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {
        **os.environ,
        "GANTRY_IMAGE": IMAGE,
        "GANTRY_POSTGRES_IMAGE": POSTGRES_IMAGE,
        "GANTRY_DB_PASSWORD": secrets.token_urlsafe(16),
        "GANTRY_PUBLISH": f"127.0.0.1:{port}",
    }
    command = [
        compose, "--file", str(COMPOSE), "--project-name", project,
        "--podman-path", str(wrapper),
        # This host's hard limits are below podman's defaults.
        "--podman-run-args", f"--ulimit=nofile={nofile}:{nofile} --ulimit=nproc={nproc}:{nproc}",
    ]  # fmt: skip
    made = Stack(command, env, project, f"http://127.0.0.1:{port}")
    try:
        yield made
    finally:
        subprocess.run([*command, "down", "--volumes"], env=env, capture_output=True,
                       timeout=180, check=False)  # fmt: skip


def wait_up(stack: Stack) -> None:
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{stack.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            logs = podman("logs", stack.container("gantry"), check=False)
            pytest.fail(f"gantry not serving in 90 s:\n{logs.stdout}{logs.stderr}")
        time.sleep(0.3)


def jobs_counted(stack: Stack, backend: str, state: str) -> float:
    response = stack.get("/metrics")
    assert response.status_code == 200, response.text
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "gantry_jobs" and sample.labels == {
                "backend": backend, "state": state
            }:  # fmt: skip
                return float(sample.value)
    raise AssertionError(f"no gantry_jobs sample for {backend}/{state}")


def finished(stack: Stack, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        job: dict[str, Any] = stack.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("completed", "failed", "cancelled") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_compose_serves_jobs_on_postgres_and_keeps_them_across_a_restart(stack: Stack) -> None:
    began = time.monotonic()
    stack.compose("up", "--detach", "postgres")
    stack.healthy("postgres")
    # A server on 0.0.0.0 needs a token: made in the stack's database first.
    made = stack.compose("run", "--rm", "gantry", "gantry", "token", "create",
                         "--scope", "admin", "ops")  # fmt: skip
    stack.token = made.stdout.strip().splitlines()[-1]
    assert stack.token.startswith("gty_"), made.stdout
    stack.headers = {"Authorization": f"Bearer {stack.token}"}
    stack.compose("up", "--detach")
    wait_up(stack)
    stack.healthy("gantry")
    assert httpx.get(f"{stack.url}/api/v1/jobs", timeout=10).status_code == 401

    response = httpx.post(f"{stack.url}/api/v1/jobs", json=JOB, headers=stack.headers, timeout=10)
    assert response.status_code == 201, response.text
    job = finished(stack, response.json()["id"])
    assert (job["state"], job["exit_code"]) == ("completed", 0), job
    assert jobs_counted(stack, "local", "completed") == 1
    first_up = time.monotonic() - began

    # Down (containers gone, volumes kept) and up again: new containers, same data.
    stack.compose("down")
    stack.compose("up", "--detach")
    wait_up(stack)
    again = stack.get(f"/api/v1/jobs/{job['id']}").json()
    log = stack.get(f"/api/v1/jobs/{job['id']}/logs").json()
    assert (again["state"], again["name"], again["attempt"]) == ("completed", "composed", 1)
    assert log["text"] == "hello from compose\n"
    assert jobs_counted(stack, "local", "completed") == 1
    # PostgreSQL was stopped cleanly (stop_signal SIGINT), not crash-recovered.
    postgres = podman("logs", stack.container("postgres"), check=False)
    text = postgres.stdout + postgres.stderr
    assert "database system was shut down at" in text, text
    assert "not properly shut down" not in text, text
    print(f"compose: first up and a job in {first_up:.0f} s, "
          f"all in {time.monotonic() - began:.0f} s")  # fmt: skip
