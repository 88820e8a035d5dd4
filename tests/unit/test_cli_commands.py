"""CLI commands against a mock server (httpx.MockTransport): requests and output."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from gantry.cli.main import app
from gantry.cli.runtime import Runtime
from gantry.client.models import JobsPage, JobSubmitted

Handler = Callable[[httpx.Request], httpx.Response]


def _job(job_id: int, state: str = "queued", **extra: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "name": "job",
        "kind": "command",
        "backend": "local",
        "state": state,
        "reason": None,
        "priority": 0,
        "tags": [],
        "options": {"cores": 1},
        "inputs": [],
        "outputs": [],
        "working_dir": "/tmp",
        "exit_code": None,
        "attempt": 1,
        "max_retries": 0,
        "backend_ref": None,
        "warnings": [],
        "created_at": "2024-01-01T10:00:00Z",
        "updated_at": "2024-01-01T10:00:00Z",
        "started_at": None,
        "ended_at": None,
        "spec": "echo hi\n",
        "env": {},
        "depends_on": [],
        **extra,
    }


def _event(event_id: int, job_id: int, src: str | None, dst: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "job_id": job_id,
        "at": "2024-01-01T10:00:00Z",
        "from_state": src,
        "to_state": dst,
        "message": None,
    }


def _sse(*events: tuple[str, str]) -> httpx.Response:
    body = ": ping\r\n\r\n" + "".join(
        f"event: {name}\r\n" + "".join(f"data: {line}\r\n" for line in data.split("\n")) + "\r\n"
        for name, data in events
    )
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


class FakeServer:
    """Answers by (method, path); records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(
        self,
        method: str,
        path: str,
        status: int = 200,
        body: Any = None,
        handler: Handler | None = None,
    ) -> None:
        self.routes[method, path] = handler or (lambda _: httpx.Response(status, json=body))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        route = self.routes.get((request.method, request.url.path))
        if route is None:
            return httpx.Response(404, json={"detail": "Not Found"})
        return route(request)

    def run(
        self, *args: str, input: str | None = None, env: Mapping[str, str | None] | None = None
    ) -> Result:
        runtime = Runtime(transport=httpx.MockTransport(self._handle))
        return CliRunner().invoke(app, list(args), input=input, env=env, obj=runtime)

    def body(self, index: int = 0) -> Any:
        return json.loads(self.requests[index].content)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


# --- submit ------------------------------------------------------------------


def test_submit_words_after_double_dash(server: FakeServer, tmp_path: Path) -> None:
    server.on("POST", "/api/v1/jobs", 201, _job(12))
    result = server.run(
        "--url",
        "http://gantry.test:9000",
        "submit",
        "-n",
        "greet",
        "-o",
        "cores=2",
        "-o",
        "walltime=1:00:00",
        "--after",
        "3",
        "--tag",
        "t1",
        "-e",
        "A=1",
        "--priority",
        "5",
        "-C",
        str(tmp_path),
        "--",
        "echo",
        "hello world",
        "--",
        "-x",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "12\n"
    assert str(server.requests[0].url) == "http://gantry.test:9000/api/v1/jobs"
    assert server.body() == {
        "name": "greet",
        "spec": "echo 'hello world' -- -x",
        "options": {"cores": 2, "walltime": "1:00:00"},
        "depends_on": [3],
        "working_dir": str(tmp_path),
        "env": {"A": "1"},
        "tags": ["t1"],
        "priority": 5,
    }


def test_a_submit_whose_answer_was_lost_is_resent_with_the_same_key(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gantry.client.core.RETRY_DELAY", 0)
    calls: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["idempotency-key"])
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("server disconnected", request=request)
        return httpx.Response(200, json=_job(3), headers={"Idempotent-Replayed": "true"})

    server.on("POST", "/api/v1/jobs", handler=flaky)
    result = server.run("submit", "--", "true")
    assert (result.exit_code, result.stdout) == (0, "3\n")
    assert len(calls) == 2 and calls[0] == calls[1] and len(calls[0]) == 32


def test_submit_a_file_defaults_to_its_name_and_the_current_dir(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "build-all.sh"
    script.write_text("make all\n")
    monkeypatch.chdir(tmp_path)
    server.on("POST", "/api/v1/jobs", 201, _job(1))
    assert server.run("submit", "build-all.sh").exit_code == 0
    body = server.body()
    assert (body["spec"], body["name"], body["working_dir"]) == (
        "make all\n",
        "build_all",
        str(tmp_path),
    )
    assert "backend" not in body


def test_submit_reads_piped_stdin(server: FakeServer) -> None:
    server.on("POST", "/api/v1/jobs", 201, _job(1))
    assert server.run("submit", input="echo piped\n").exit_code == 0
    assert server.body()["spec"] == "echo piped\n"
    assert "name" not in server.body()  # the server's default


def test_submit_prints_warnings_on_stderr_and_json_on_stdout(server: FakeServer) -> None:
    job = _job(4, warnings=["option 'gpus' is not supported by backend 'local' and was dropped"])
    server.on("POST", "/api/v1/jobs", 201, job)
    result = server.run("submit", "--json", "-o", "gpus=1", "--", "true")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == JobSubmitted.model_validate(job).model_dump(mode="json")
    assert "warning: option 'gpus' is not supported" in result.stderr


def test_submit_422_lists_each_field_and_exits_2(server: FakeServer) -> None:
    detail = [
        {
            "loc": ["body", "backend"],
            "msg": "unknown backend 'nope': choose one of local",
            "type": "value_error",
        },
        {
            "loc": ["body", "options"],
            "msg": "walltime 'x' is malformed: use HH:MM:SS",
            "type": "value_error",
        },
    ]
    server.on("POST", "/api/v1/jobs", 422, {"detail": detail})
    result = server.run("submit", "-b", "nope", "--", "true")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error: backend: unknown backend 'nope': choose one of local\n" in result.stderr
    assert "options: walltime 'x' is malformed: use HH:MM:SS" in result.stderr
    assert "Traceback" not in result.output


def test_submit_without_a_script_is_a_usage_error(server: FakeServer) -> None:
    result = server.run("submit", "--")
    assert result.exit_code == 2
    assert "nothing after `--`" in result.stderr
    assert server.requests == []


def _waiting_server(server: FakeServer, end: str, **ended: Any) -> None:
    server.on("POST", "/api/v1/jobs", 201, _job(5))
    server.on(
        "GET",
        "/api/v1/jobs/5/events",
        handler=lambda _: _sse(
            ("job", json.dumps(_event(1, 5, None, "queued"))),
            ("job", json.dumps(_event(2, 5, "queued", "running"))),
            ("job", json.dumps(_event(3, 5, "running", end))),
        ),
    )
    server.on("GET", "/api/v1/jobs/5", body=_job(5, end, **ended))


def test_submit_wait_exits_0_when_the_job_completed(server: FakeServer) -> None:
    _waiting_server(server, "completed", exit_code=0, reason="exited 0")
    result = server.run("submit", "--wait", "--", "echo", "hello")
    assert result.exit_code == 0, result.output
    assert result.stdout == "5\n"
    assert "job 5: running" in result.stderr
    assert "job 5 completed: exited 0" in result.stderr
    assert server.requests[1].url.params["follow"] == "true"


def test_submit_wait_exits_1_with_the_reason_when_it_failed(server: FakeServer) -> None:
    _waiting_server(server, "failed", exit_code=3, reason="exited with code 3")
    result = server.run("submit", "--wait", "--json", "--", "false")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["state"] == "failed"
    assert "job 5 failed (exit code 3): exited with code 3" in result.stderr


def test_submit_batch_resolves_working_dirs_and_waits(server: FakeServer, tmp_path: Path) -> None:
    batch = tmp_path / "batch.json"
    batch.write_text(
        json.dumps(
            {
                "jobs": [
                    {"name": "a", "spec": "true"},
                    {"name": "b", "spec": "false", "working_dir": "sub"},
                ]
            }
        )
    )
    jobs = [_job(7, name="a"), _job(8, name="b")]
    server.on("POST", "/api/v1/jobs/batch", 201, {"jobs": jobs, "warnings": []})
    server.on("GET", "/api/v1/jobs/7/events", body={"items": [_event(40, 7, None, "queued")]})
    server.on(
        "GET",
        "/api/v1/events",
        handler=lambda _: _sse(
            ("job", json.dumps(_event(42, 9, "running", "completed"))),  # not ours
            ("job", json.dumps(_event(43, 7, "running", "completed"))),
            ("job", json.dumps(_event(44, 8, "running", "failed"))),
        ),
    )
    result = server.run("submit-batch", str(batch), "-C", str(tmp_path), "--wait")
    assert result.exit_code == 1, result.output
    assert result.stdout == "7 a\n8 b\n"
    assert [j["working_dir"] for j in server.body()["jobs"]] == [
        str(tmp_path),
        str(tmp_path / "sub"),
    ]
    assert server.requests[2].url.params["after"] == "39"
    assert "2 jobs ended: 1 completed, 1 failed" in result.stderr
    assert "not completed: 8 b (failed)" in result.stderr


# --- connection and token ---------------------------------------------------------


def test_connection_refused_names_the_url_and_exits_2(server: FakeServer) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    server.on("GET", "/api/v1/jobs", handler=refuse)
    result = server.run("list", env={"GANTRY_URL": "http://10.0.0.1:9"})
    assert result.exit_code == 2
    assert result.stderr == (
        "error: cannot reach the gantry server at http://10.0.0.1:9: "
        "start it with `gantry serve` or set --url/GANTRY_URL\n"
    )


def test_the_token_goes_in_the_authorization_header(server: FakeServer) -> None:
    server.on("GET", "/api/v1/backends", body=[])
    assert server.run("backends", env={"GANTRY_TOKEN": "s3cret"}).exit_code == 0
    assert server.requests[0].headers["authorization"] == "Bearer s3cret"


# --- list, status, show, events ------------------------------------------------------


def test_list_passes_filters_and_renders_a_table(server: FakeServer) -> None:
    jobs = [
        _job(
            2,
            "failed",
            reason="exited with code 3",
            started_at="2024-01-01T10:00:00Z",
            ended_at="2024-01-01T10:00:02Z",
        ),
        _job(1, "completed"),
    ]
    server.on("GET", "/api/v1/jobs", body={"items": jobs, "next_before": 1})
    result = server.run(
        "list",
        "-s",
        "failed",
        "-s",
        "completed",
        "--backend",
        "local",
        "--name",
        "jo",
        "--tag",
        "x",
        "--limit",
        "2",
    )
    assert result.exit_code == 0, result.output
    params = server.requests[0].url.params
    assert params.get_list("state") == ["failed", "completed"]
    assert (params["backend"], params["name"], params["tag"], params["limit"]) == (
        "local",
        "jo",
        "x",
        "2",
    )
    assert "before" not in params
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "name", "backend", "state", "reason", "created", "duration"]
    assert "exited with code 3" in lines[1] and "2.0s" in lines[1]
    assert "more: --before 1" in result.stderr


def test_list_json_is_the_page(server: FakeServer) -> None:
    page = {"items": [_job(1)], "next_before": None}
    server.on("GET", "/api/v1/jobs", body=page)
    result = server.run("list", "--json")
    assert json.loads(result.stdout) == JobsPage.model_validate(page).model_dump(mode="json")


def test_status_with_ids_shows_those_and_reports_missing_ones(server: FakeServer) -> None:
    server.on("GET", "/api/v1/jobs/1", body=_job(1, "running"))
    server.on("GET", "/api/v1/jobs/9", 404, {"detail": "job 9 does not exist"})
    result = server.run("status", "1", "9")
    assert result.exit_code == 1
    assert "running" in result.stdout
    assert "error: job 9 does not exist" in result.stderr


def test_show_prints_details_and_the_spec(server: FakeServer) -> None:
    job = _job(3, "failed", exit_code=2, depends_on=[1, 2], warnings=["dropped x"])
    server.on("GET", "/api/v1/jobs/3", body=job)
    result = server.run("show", "3")
    assert result.exit_code == 0
    assert "failed (exit code 2)" in result.stdout
    assert "depends on   1, 2" in result.stdout
    assert "cores=1" in result.stdout and "dropped x" in result.stdout
    assert result.stdout.endswith("spec:\necho hi\n")


def test_show_of_a_missing_job(server: FakeServer) -> None:
    server.on("GET", "/api/v1/jobs/12", 404, {"detail": "job 12 does not exist"})
    result = server.run("show", "12")
    assert (result.exit_code, result.stderr) == (1, "error: job 12 does not exist\n")


def test_events_follow_prints_json_lines(server: FakeServer) -> None:
    rows = [_event(1, 5, None, "queued"), _event(2, 5, "queued", "cancelled")]
    server.on(
        "GET",
        "/api/v1/jobs/5/events",
        handler=lambda _: _sse(*(("job", json.dumps(r)) for r in rows)),
    )
    result = server.run("events", "5", "--follow", "--json")
    assert result.exit_code == 0
    assert [json.loads(line) for line in result.stdout.splitlines()] == rows


# --- cancel, logs, backends -----------------------------------------------------------


def test_cancel_reports_each_job_and_fails_if_any_failed(server: FakeServer) -> None:
    server.on("POST", "/api/v1/jobs/1/cancel", 202, {"id": 1, "state": "cancelling"})
    server.on(
        "POST",
        "/api/v1/jobs/2/cancel",
        409,
        {"detail": "job 2 already ended: it is completed", "id": 2, "state": "completed"},
    )
    server.on("POST", "/api/v1/jobs/3/cancel", 404, {"detail": "job 3 does not exist"})
    result = server.run("cancel", "1", "2", "3")
    assert result.exit_code == 1
    assert result.stdout == "job 1: cancelling\n"
    assert result.stderr == (
        "error: job 2 already ended: it is completed\nerror: job 3 does not exist\n"
    )


def test_logs_pages_through_next_offset(server: FakeServer) -> None:
    chunks = {"0": ("hel", 3, False), "3": ("lo\n", 6, True)}

    def page(request: httpx.Request) -> httpx.Response:
        text, end, complete = chunks[request.url.params["offset"]]
        return httpx.Response(
            200,
            json={
                "job_id": 4,
                "stream": request.url.params["stream"],
                "offset": 0,
                "text": text,
                "next_offset": end,
                "size": 6,
                "complete": complete,
            },
        )

    server.on("GET", "/api/v1/jobs/4/logs", handler=page)
    result = server.run("logs", "4", "--stderr", "--attempt", "2")
    assert (result.exit_code, result.stdout) == (0, "hello\n")
    assert server.requests[0].url.params["stream"] == "stderr"
    assert server.requests[0].url.params["attempt"] == "2"


def test_logs_follow_prints_log_events_until_end(server: FakeServer) -> None:
    server.on(
        "GET",
        "/api/v1/jobs/4/logs",
        handler=lambda _: _sse(
            ("log", "line 1\nline 2\n"), ("log", "no newline"), ("end", '{"job_id": 4}')
        ),
    )
    result = server.run("logs", "-f", "4")
    assert (result.exit_code, result.stdout) == (0, "line 1\nline 2\nno newline")
    assert server.requests[0].url.params["follow"] == "true"


def test_a_stream_of_a_missing_job_is_a_clear_error(server: FakeServer) -> None:
    server.on("GET", "/api/v1/jobs/8/logs", 404, {"detail": "job 8 does not exist"})
    result = server.run("logs", "-f", "8")
    assert (result.exit_code, result.stderr) == (1, "error: job 8 does not exist\n")


def test_a_log_stream_cut_before_its_end_says_so(server: FakeServer) -> None:
    server.on("GET", "/api/v1/jobs/8/logs", handler=lambda _: _sse(("log", "partial\n")))
    result = server.run("logs", "-f", "8")
    assert result.exit_code == 1
    assert result.stdout == "partial\n"
    assert "the log stream ended before job 8 did" in result.stderr


def test_backends_table_and_json(server: FakeServer) -> None:
    infos = [
        {
            "name": "local",
            "loaded": True,
            "running": True,
            "healthy": True,
            "message": "ok",
            "option_defaults": {"cores": 1, "walltime": None},
            "supports_dependencies": False,
            "entry_point": "gantry.backends.local:LocalBackend",
        }
    ]
    server.on("GET", "/api/v1/backends", body=infos)
    table = server.run("backends")
    assert table.exit_code == 0
    assert table.stdout.splitlines()[1].split() == [
        "local",
        "yes",
        "yes",
        "ok",
        "cores=1,",
        "walltime=(none)",
    ]
    assert json.loads(server.run("backends", "--json").stdout) == infos


# --- accounting and stats -------------------------------------------------------------


def test_show_prints_the_accounting_of_an_ended_job(server: FakeServer) -> None:
    accounting = {
        "cpu_user_seconds": 0.9,
        "cpu_system_seconds": 0.12,
        "max_rss_bytes": 220 * 1024 * 1024,
        "wall_seconds": 2.5,
        "driver_seconds": None,
        "samples": None,
    }
    server.on("GET", "/api/v1/jobs/3", body=_job(3, "completed", accounting=accounting))
    result = server.run("show", "3")
    assert result.exit_code == 0
    assert "cpu 0.90s user + 0.12s sys, peak memory 220.0 MiB, wall 2.5s" in result.stdout


def test_stats_prints_totals_and_states(server: FakeServer) -> None:
    entry = {"jobs": 2, "measured": 2, "cpu_hours": 0.5, "peak_memory_bytes": 2048,
             "wall_hours": 1.0}  # fmt: skip
    body = {"tag": "exp", **entry, "by_state": {"completed": entry}}
    server.on("GET", "/api/v1/stats", body=body)
    result = server.run("stats", "--tag", "exp")
    assert result.exit_code == 0
    assert server.requests[-1].url.params["tag"] == "exp"
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["completed", "2", "2", "0.5000", "2.0", "KiB", "1.0000"]
    assert lines[2].split()[0] == "total"


# --- arrays -----------------------------------------------------------------------------


def test_submit_an_array_and_show_its_task_counts(server: FakeServer) -> None:
    server.on("POST", "/api/v1/jobs", 201, _job(5, array="0-99%10"))
    result = server.run("submit", "--array", "0-99%10", "--", "echo", "hi")
    assert result.exit_code == 0, result.stderr
    assert server.body()["array"] == "0-99%10"
    tasks = {"count": 100, "limit": 10, "by_state": {"pending": 57, "running": 3, "completed": 40}}
    server.on("GET", "/api/v1/jobs/5", body=_job(5, "running", array="0-99%10", tasks=tasks))
    shown = server.run("show", "5")
    assert "0-99%10: 100 tasks (40 completed, 57 pending, 3 running)" in shown.stdout


def test_submit_without_an_array_sends_none(server: FakeServer) -> None:
    server.on("POST", "/api/v1/jobs", 201, _job(6))
    assert server.run("submit", "--", "true").exit_code == 0
    assert "array" not in server.body()


# --- export and data ----------------------------------------------------------------------


def test_export_writes_the_file_and_leaves_none_when_refused(
    server: FakeServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def data(request: httpx.Request) -> httpx.Response:
        if request.url.params["format"] == "csv":
            return httpx.Response(200, content=b"role,uts\ncounter,1.0\n")
        return httpx.Response(409, json={"detail": "job 7 has not ended (it is running)"})

    server.on("GET", "/api/v1/jobs/7/data", handler=data)
    written = server.run("export", "7", "-f", "csv")
    assert written.exit_code == 0, written.stderr
    assert (tmp_path / "job-7.csv").read_bytes() == b"role,uts\ncounter,1.0\n"
    assert "wrote job-7.csv (21 bytes)" in written.stderr
    refused = server.run("export", "7", "-o", "x.nc")
    assert (refused.exit_code, refused.stderr) == (
        1,
        "error: job 7 has not ended (it is running)\n",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job-7.csv"]
    bad = server.run("export", "7", "-f", "xlsx")
    assert bad.exit_code == 2 and "use netcdf or csv" in bad.stderr


def test_data_prints_json_lines_page_by_page(server: FakeServer) -> None:
    def page(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        samples = [{"uts": float(offset), "values": {"val": offset}}] if offset < 1 else []
        body = {"job_id": 7, "attempt": 1, "state": "completed", "complete": True,
                "roles": [{"role": "counter", "offset": offset, "next_offset": offset + 1,
                           "samples": samples}]}  # fmt: skip
        return httpx.Response(200, json=body)

    server.on("GET", "/api/v1/jobs/7/data", handler=page)
    result = server.run("data", "7")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"role": "counter", "uts": 0.0, "values": {"val": 0}}
    ]
