"""The client's sans-IO core, driven by both transports against httpx.MockTransport:
the same scenario gives the same result sync and async (one implementation)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gantry.client import (
    AsyncClient,
    Client,
    ConnectionLost,
    StreamEnded,
    Unavailable,
)
from gantry.client.models import JobCreate

Handler = Callable[[httpx.Request], httpx.Response]

JOB = {
    "id": 5,
    "name": "job",
    "kind": "command",
    "backend": "local",
    "state": "completed",
    "reason": None,
    "priority": 0,
    "tags": [],
    "options": {},
    "inputs": [],
    "outputs": [],
    "working_dir": "/tmp",
    "exit_code": 0,
    "attempt": 1,
    "max_retries": 0,
    "backend_ref": "1",
    "warnings": [],
    "created_at": "2024-01-01T10:00:00Z",
    "updated_at": "2024-01-01T10:00:00Z",
    "started_at": None,
    "ended_at": None,
    "spec": "true",
    "env": {},
    "depends_on": [],
}


def sse(*rows: tuple[int, str, str | None]) -> httpx.Response:
    events = [
        {
            "id": i,
            "job_id": 5,
            "at": "2024-01-01T10:00:00Z",
            "from_state": src,
            "to_state": dst,
            "message": None,
        }
        for i, dst, src in rows
    ]
    body = ": ping\n\n" + "".join(
        f"event: job\nid: {e['id']}\ndata: {json.dumps(e)}\n\n" for e in events
    )
    return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})


def run(kind: str, handler: Handler, call: Callable[[Any], Any]) -> Any:
    """``call(client)`` on a Client, or awaited on an AsyncClient, with the same handler."""
    transport = httpx.MockTransport(handler)
    if kind == "sync":
        with Client("http://gantry.test", transport=transport) as client:
            return call(client)

    async def main() -> Any:
        async with AsyncClient("http://gantry.test", transport=transport) as client:
            return await call(client)

    return asyncio.run(main())


BOTH = pytest.mark.parametrize("kind", ["sync", "async"])


@pytest.fixture(autouse=True)
def _no_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gantry.client.core.RETRY_DELAY", 0.001)
    monkeypatch.setattr("gantry.client.waiting.MAX_BACKOFF", 0.001)


@BOTH
def test_wait_picks_a_cut_stream_up_after_the_last_event(kind: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api/v1/jobs/5":
            return httpx.Response(200, json=JOB)
        if len(seen) == 1:
            return sse((1, "queued", None), (2, "running", "queued"))  # then cut
        if len(seen) == 2:
            raise httpx.RemoteProtocolError("server went away", request=request)
        return sse((3, "completed", "running"))

    states: list[str] = []
    job = run(kind, handler, lambda c: c.wait(5, on_event=lambda e: states.append(e.to_state)))
    assert job.state == "completed" and states == ["queued", "running", "completed"]
    assert [r.url.params.get("after") for r in seen] == ["0", "2", "2", None]


@BOTH
def test_a_503_is_retried_for_safe_requests_and_raised_for_others(kind: str) -> None:
    answers = iter([503, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(
                503, json={"detail": "shutting down"}, headers={"Retry-After": "0"}
            )
        status = next(answers)
        body = JOB if status == 200 else {"detail": "the server is shutting down; retry"}
        return httpx.Response(status, json=body, headers={"Retry-After": "0"})

    assert run(kind, handler, lambda c: c.job(5)).id == 5
    with pytest.raises(Unavailable) as caught:
        run(kind, handler, lambda c: c.cancel(5))
    assert (caught.value.message, caught.value.retry_after) == ("shutting down", 0.0)


@BOTH
def test_a_lost_submit_is_resent_with_its_key_and_a_model_sends_its_set_fields(kind: str) -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        assert json.loads(request.content) == {"spec": "true", "array": "0-3"}
        if len(keys) == 1:
            raise httpx.ReadError("reset by peer", request=request)
        return httpx.Response(201, json={**JOB, "state": "queued"})

    job = run(kind, handler, lambda c: c.submit(JobCreate(spec="true", array="0-3")))
    assert job.state == "queued" and len(keys) == 2 and keys[0] == keys[1]


@BOTH
def test_a_log_stream_cut_early_and_a_lost_cancel_say_so(kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ReadError("reset by peer", request=request)
        return httpx.Response(200, text="event: log\ndata: partial\n\n")

    async def drain(stream: Any) -> list[str]:
        return [text async for text in stream]

    def follow(client: Any) -> Any:
        stream = client.follow_logs(5)
        return list(stream) if kind == "sync" else drain(stream)

    with pytest.raises(StreamEnded, match="the log stream ended before job 5 did"):
        run(kind, handler, follow)
    with pytest.raises(ConnectionLost, match=r"^lost the connection to the gantry server at "):
        run(kind, handler, lambda c: c.cancel(5))


def test_from_env_takes_the_url_and_token_as_the_cli_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANTRY_URL", "http://lab.test:9000/")
    monkeypatch.setenv("GANTRY_TOKEN", "gty_secret")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok", "version": "0.1.0", "active_jobs": 0})

    with Client.from_env(transport=httpx.MockTransport(handler)) as client:
        assert client.health().active_jobs == 0
    assert str(seen[0].url) == "http://lab.test:9000/healthz"
    assert seen[0].headers["authorization"] == "Bearer gty_secret"
