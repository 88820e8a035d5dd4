"""The real server and the real CLI, each a separate process, on the local backend."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.acceptance.server import GANTRY, ServerProcess, clean_env, free_port


@dataclass
class Server:
    url: str
    data_dir: Path
    workdir: Path

    def gantry(
        self, *args: str, input: str | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GANTRY, *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.workdir,
            env=clean_env(GANTRY_URL=self.url),
        )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("cli")
    process = ServerProcess(root)
    process.start()
    try:
        (root / "work").mkdir()
        yield Server(process.url, process.data_dir, root / "work")
    finally:
        # A SIGKILL after a hung shutdown shows as -9 and fails here; uvicorn
        # re-raises SIGTERM after its graceful shutdown, hence -15.
        code = process.stop(timeout=15)
        assert code in (0, -signal.SIGTERM), process.log_path.read_text()


def test_submit_wait_then_logs(server: Server) -> None:
    done = server.gantry("submit", "--wait", "--", "echo", "hello")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert job_id.isdigit()
    assert f"job {job_id} completed" in done.stderr
    logs = server.gantry("logs", job_id)
    assert (logs.returncode, logs.stdout) == (0, "hello\n")


def test_submit_from_a_file_runs_in_the_current_dir(server: Server) -> None:
    script = server.workdir / "where.sh"
    script.write_text("pwd\necho err >&2\n")
    done = server.gantry("submit", "--wait", "--json", "where.sh")
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["name"], job["state"], job["working_dir"]) == (
        "where",
        "completed",
        str(server.workdir),
    )
    assert server.gantry("logs", str(job["id"])).stdout == f"{server.workdir}\n"
    assert server.gantry("logs", "--stderr", str(job["id"])).stdout == "err\n"


def test_a_failing_script_from_stdin_exits_1_with_the_reason(server: Server) -> None:
    done = server.gantry("submit", "--wait", "-", input="exit 3\n")
    assert done.returncode == 1
    assert "failed (exit code 3)" in done.stderr


def test_logs_follow_streams_until_the_job_ends(server: Server) -> None:
    job_id = server.gantry(
        "submit", "--", "sh", "-c", "echo one; sleep 0.5; echo two"
    ).stdout.strip()
    follow = server.gantry("logs", "-f", job_id)
    assert (follow.returncode, follow.stdout) == (0, "one\ntwo\n")


def test_list_json_and_status_of_ids(server: Server) -> None:
    job_id = int(
        server.gantry("submit", "--wait", "--name", "listed", "--tag", "acc", "--", "true").stdout
    )
    listed = server.gantry("list", "--json", "--tag", "acc")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert [(j["id"], j["name"], j["state"]) for j in items] == [(job_id, "listed", "completed")]
    status = server.gantry("status", str(job_id))
    assert status.returncode == 0 and "listed" in status.stdout and "completed" in status.stdout


def test_cancel_a_running_job_then_again(server: Server) -> None:
    job_id = server.gantry("submit", "--", "sleep", "30").stdout.strip()
    first = server.gantry("cancel", job_id)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() in (f"job {job_id}: cancelling", f"job {job_id}: cancelled")
    events = server.gantry("events", "--follow", job_id, timeout=15)
    assert events.returncode == 0, events.stderr
    assert "→ cancelled" in events.stdout.splitlines()[-1]
    again = server.gantry("cancel", job_id)
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: job {job_id} already ended: it is cancelled"
    missing = server.gantry("cancel", "999999")
    assert (missing.returncode, missing.stderr.strip()) == (1, "error: job 999999 does not exist")


def test_submit_batch_waits_for_all(server: Server) -> None:
    batch = {
        "jobs": [
            {"name": "first", "spec": "echo 1 > one.txt", "outputs": ["one.txt"]},
            {"name": "second", "spec": "cat one.txt", "inputs": ["one.txt"]},
        ]
    }
    done = server.gantry("submit-batch", "--wait", "-", input=json.dumps(batch))
    assert done.returncode == 0, done.stderr
    assert "2 jobs ended: 2 completed" in done.stderr
    second = done.stdout.splitlines()[1].split()[0]
    assert server.gantry("logs", second).stdout == "1\n"


def test_unknown_backend_is_a_clear_422(server: Server) -> None:
    done = server.gantry("submit", "--backend", "nope", "--", "true")
    assert done.returncode == 2
    assert done.stderr.startswith("error: backend: unknown backend 'nope': choose one of ")
    assert "local" in done.stderr and "Traceback" not in done.stderr


def test_backends_lists_local(server: Server) -> None:
    table = server.gantry("backends")
    assert table.returncode == 0, table.stderr
    assert any(line.split()[:3] == ["local", "yes", "yes"] for line in table.stdout.splitlines())
    infos = json.loads(server.gantry("backends", "--json").stdout)
    assert "cores" in next(i for i in infos if i["name"] == "local")["option_defaults"]


def test_config_set_get_unset(server: Server) -> None:
    data = str(server.data_dir)
    done = server.gantry("config", "set", "backend.local.max_cores", "2", "-d", data)
    assert done.returncode == 0, done.stderr
    got = server.gantry("config", "get", "backend.local.max_cores", "-d", data)
    assert (got.returncode, got.stdout) == (0, "2\n")
    assert server.gantry("config", "unset", "backend.local.max_cores", "-d", data).returncode == 0
    assert server.gantry("config", "get", "backend.local.max_cores", "-d", data).returncode == 1


def test_no_server_is_a_clear_message(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [GANTRY, "--url", url, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"error: cannot reach the gantry server at {url}: start it with "
        "`gantry serve` or set --url/GANTRY_URL\n"
    )
