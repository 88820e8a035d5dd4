"""The REST API over the real engine and a real SQLite file, with the in-memory
fake backend (tests/fakes.py) so outcomes are deterministic and fast."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

API = "/api/v1"


async def wait_state(
    client: httpx.AsyncClient, job_id: int, *states: str, timeout: float = 10
) -> dict[str, Any]:
    with anyio.fail_after(timeout):
        while True:
            job: dict[str, Any] = (await client.get(f"{API}/jobs/{job_id}")).json()
            if job["state"] in states:
                return job
            await anyio.sleep(0.01)


async def submit(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("spec", "true")
    response = await client.post(f"{API}/jobs", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def messages(response: httpx.Response) -> str:
    return " | ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in response.json()["detail"]
    )


async def test_job_runs_to_completion_with_one_event_per_transition(
    client: httpx.AsyncClient,
) -> None:
    job = await submit(client, name="hello", tags=["x"])
    done = await wait_state(client, job["id"], "completed")
    assert done["exit_code"] == 0 and done["attempt"] == 1
    assert done["backend_ref"] == f"fake-{job['id']}.1"
    events = (await client.get(f"{API}/jobs/{job['id']}/events")).json()["items"]
    assert [(e["from_state"], e["to_state"]) for e in events] == [
        (None, "queued"),
        ("queued", "submitted"),
        ("submitted", "running"),
        ("running", "completed"),
    ]


async def test_unknown_options_are_dropped_with_a_warning(client: httpx.AsyncClient) -> None:
    job = await submit(client, options={"cores": 2, "gpus": 4})
    assert job["options"] == {"cores": 2}
    assert len(job["warnings"]) == 1 and "'gpus'" in job["warnings"][0]
    shown = (await client.get(f"{API}/jobs/{job['id']}")).json()
    assert shown["warnings"] == job["warnings"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "1abc", "spec": "true"}, "body.name", "letter or underscore"),
        ({"name": "a/b", "spec": "true"}, "body.name", "letter or underscore"),
        ({"spec": "   \n"}, "body.spec", "spec is empty"),
        ({}, "body.spec", "Field required"),
        ({"spec": "true", "backend": "nope"}, "body.backend", "unknown backend 'nope'"),
        ({"spec": "true", "options": {"cores": 0}}, "body.options", "cores"),
        ({"spec": "true", "priority": 10**9}, "body.priority", "less than or equal"),
        ({"spec": "true", "working_dir": "rel/dir"}, "body.working_dir", "absolute"),
        ({"spec": "true", "working_dir": "/no/such/dir"}, "body.working_dir", "not an existing"),
        ({"spec": "true", "env": {"A-B": "1"}}, "body.env", "invalid"),
        ({"spec": "true", "depends_on": ["other"]}, "body.depends_on", "within a batch"),
        ({"spec": "true", "depends_on": [999999]}, "body.depends_on", "[999999]"),
        ({"spec": "true", "depends_on": [0]}, "body.depends_on", "between 1 and"),
        ({"spec": "true", "tags": ["a b"]}, "body.tags.0", "'a b' is invalid: use a letter"),
        ({"spec": "true", "depends_on": [2**63]}, "body.depends_on", "between 1 and"),
        ({"spec": "true", "surprise": 1}, "body.surprise", "Extra inputs"),
    ],
)
async def test_bad_submissions_name_the_field_and_the_fix(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, words: str
) -> None:
    response = await client.post(f"{API}/jobs", json=body)
    assert response.status_code == 422, response.text
    text = messages(response)
    assert field in text and words in text, text
    assert (await client.get(f"{API}/jobs")).json()["items"] == []


async def test_malformed_and_oversized_bodies_are_4xx(make_client: Callable[..., Any]) -> None:
    async with make_client(max_body_bytes=2048) as (client, _):
        broken = await client.post(
            f"{API}/jobs", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 422
        huge = await client.post(f"{API}/jobs", json={"spec": "x" * 4096})
        assert huge.status_code == 413 and "GANTRY_MAX_BODY_BYTES" in huge.json()["detail"]


async def test_failed_dependency_cancels_dependents_transitively(
    client: httpx.AsyncClient,
) -> None:
    first = await submit(client, name="first", spec="exit 3")
    second = await submit(client, name="second", depends_on=[first["id"]])
    third = await submit(client, name="third", depends_on=[second["id"]])
    failed = await wait_state(client, first["id"], "failed")
    assert failed["exit_code"] == 3
    second_done = await wait_state(client, second["id"], "cancelled")
    assert second_done["reason"] == f"dependency {first['id']} (first) failed"
    third_done = await wait_state(client, third["id"], "cancelled")
    assert third_done["reason"] == f"dependency {second['id']} (second) cancelled"
    # a job submitted after its dependency failed is cancelled at once
    late = await submit(client, name="late", depends_on=[first["id"]])
    assert (await wait_state(client, late["id"], "cancelled"))["reason"].startswith("dependency")


async def test_dependents_run_after_their_dependencies(make_client: Callable[..., Any]) -> None:
    async with make_client() as (client, app):
        blocker = await submit(client, name="blocker", spec="hang")
        after = await submit(client, name="after", depends_on=[blocker["id"]])
        await wait_state(client, blocker["id"], "running")
        assert (await client.get(f"{API}/jobs/{after['id']}")).json()["state"] == "queued"
        fake = app.state.catalog.running["fake"]
        # finish the blocker as the backend would
        from gantry.backends.base import BackendStatus, StatusReport

        fake._set(f"fake-{blocker['id']}.1", StatusReport(BackendStatus.COMPLETED, exit_code=0))
        await wait_state(client, after["id"], "completed")


async def test_chaining_backend_gets_dependencies_at_once(make_client: Callable[..., Any]) -> None:
    async with make_client() as (client, app):
        first = await submit(client, name="first", backend="chain", spec="hang")
        second = await submit(client, name="second", backend="chain", depends_on=[first["id"]])
        await wait_state(client, second["id"], "completed")
        chain = app.state.catalog.running["chain"]
        assert chain.dependencies[f"fake-{second['id']}.1"] == [f"fake-{first['id']}.1"]


async def test_batch_links_inputs_to_outputs_and_orders_by_priority(
    make_client: Callable[..., Any],
) -> None:
    async with make_client() as (client, app):
        jobs = [
            {"name": "low", "spec": "true", "priority": -5},
            {"name": "high", "spec": "true", "priority": 7},
            {"name": "produce", "spec": "true", "outputs": ["/data/a.txt"]},
            {"name": "consume", "spec": "true", "inputs": ["/data/../data/a.txt"]},
            {"name": "named", "spec": "true", "depends_on": ["consume"]},
        ]
        response = await client.post(f"{API}/jobs/batch", json={"jobs": jobs})
        assert response.status_code == 201, response.text
        ids = {j["name"]: j["id"] for j in response.json()["jobs"]}
        detail = (await client.get(f"{API}/jobs/{ids['consume']}")).json()
        assert detail["depends_on"] == [ids["produce"]]
        named = (await client.get(f"{API}/jobs/{ids['named']}")).json()
        assert named["depends_on"] == [ids["consume"]]
        for job_id in ids.values():
            await wait_state(client, job_id, "completed")
        order = [s.name for s in app.state.catalog.running["fake"].submitted]
        assert order.index("high") < order.index("produce") < order.index("low")
        assert order.index("consume") < order.index("named")


@pytest.mark.parametrize(
    ("jobs", "words"),
    [
        (
            [
                {"name": "a", "spec": "t", "outputs": ["/o"]},
                {"name": "b", "spec": "t", "outputs": ["/o"]},
            ],
            "produced by both 'a' and 'b'",
        ),
        (
            [
                {"name": "a", "spec": "t", "depends_on": ["b"]},
                {"name": "b", "spec": "t", "depends_on": ["a"]},
            ],
            "dependency cycle among jobs 'a', 'b'",
        ),
        ([{"name": "a", "spec": "t", "depends_on": ["zz"]}], "'zz', which is not in this batch"),
        ([{"name": "a", "spec": "t"}, {"name": "a", "spec": "t"}], "unique within a batch"),
        (
            [{"name": "a", "spec": "t"}, {"name": "b", "spec": "t", "depends_on": [424242]}],
            "[424242]",
        ),
    ],
)
async def test_rejected_batches_store_nothing(
    client: httpx.AsyncClient, jobs: list[dict[str, Any]], words: str
) -> None:
    response = await client.post(f"{API}/jobs/batch", json={"jobs": jobs})
    assert response.status_code == 422, response.text
    assert words in messages(response)
    assert (await client.get(f"{API}/jobs")).json()["items"] == []


async def test_cancel_is_idempotent_and_ended_jobs_answer_409(client: httpx.AsyncClient) -> None:
    job = await submit(client, spec="hang")
    await wait_state(client, job["id"], "running")
    first = await client.post(f"{API}/jobs/{job['id']}/cancel")
    assert first.status_code == 202
    again = await client.post(f"{API}/jobs/{job['id']}/cancel")
    assert again.status_code in (202, 409)
    done = await wait_state(client, job["id"], "cancelled")
    assert done["reason"] == "cancelled by request"
    ended = await client.post(f"{API}/jobs/{job['id']}/cancel")
    assert ended.status_code == 409 and ended.json()["state"] == "cancelled"
    missing = await client.post(f"{API}/jobs/987654/cancel")
    assert missing.status_code == 404 and "987654" in missing.json()["detail"]


async def test_cancel_of_a_queued_job_never_reaches_the_backend(
    make_client: Callable[..., Any],
) -> None:
    async with make_client() as (client, app):
        blocker = await submit(client, spec="hang")
        waiting = await submit(client, depends_on=[blocker["id"]])
        await client.post(f"{API}/jobs/{waiting['id']}/cancel")
        done = await wait_state(client, waiting["id"], "cancelled")
        assert done["attempt"] == 0 and done["backend_ref"] is None
        names = [s.job_id for s in app.state.catalog.running["fake"].submitted]
        assert waiting["id"] not in names


async def test_backend_refusal_fails_the_job_with_its_reason(client: httpx.AsyncClient) -> None:
    job = await submit(client, spec="refuse")
    done = await wait_state(client, job["id"], "failed")
    assert "fake refuses this script" in done["reason"]


async def test_list_filters_and_keyset_pages(client: httpx.AsyncClient) -> None:
    ids = []
    for i in range(7):
        job = await submit(
            client,
            name=f"{'alpha' if i % 2 else 'beta'}_{i}",
            tags=["odd"] if i % 2 else [],
            spec="exit 1" if i == 3 else "true",
        )
        ids.append(job["id"])
    for job_id in ids:
        await wait_state(client, job_id, "completed", "failed")
    seen: list[int] = []
    before = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if before:
            params["before"] = before
        page = (await client.get(f"{API}/jobs", params=params)).json()
        seen += [j["id"] for j in page["items"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == sorted(ids, reverse=True)
    by_name = (await client.get(f"{API}/jobs", params={"name": "alpha"})).json()["items"]
    assert sorted(j["id"] for j in by_name) == ids[1::2]
    by_tag = (await client.get(f"{API}/jobs", params={"tag": "odd"})).json()["items"]
    assert sorted(j["id"] for j in by_tag) == ids[1::2]
    failed = (await client.get(f"{API}/jobs", params={"state": "failed"})).json()["items"]
    assert [j["id"] for j in failed] == [ids[3]]
    both = await client.get(f"{API}/jobs", params=[("state", "failed"), ("state", "completed")])
    assert len(both.json()["items"]) == 7
    bad = await client.get(f"{API}/jobs", params={"state": "sleeping"})
    assert bad.status_code == 422


async def test_job_event_stream_ends_with_the_terminal_event(client: httpx.AsyncClient) -> None:
    job = await submit(client, spec="hang")
    await wait_state(client, job["id"], "running")
    received: list[str] = []

    async def follow() -> None:
        async with client.stream(
            "GET", f"{API}/jobs/{job['id']}/events", params={"follow": "true"}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    import json

                    received.append(json.loads(line[5:])["to_state"])

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await anyio.sleep(0.2)
            await client.post(f"{API}/jobs/{job['id']}/cancel")
    assert received[:3] == ["queued", "submitted", "running"]
    assert received[-1] == "cancelled"


async def test_backends_lists_options_and_health(client: httpx.AsyncClient) -> None:
    infos = {b["name"]: b for b in (await client.get(f"{API}/backends")).json()}
    assert infos["fake"]["option_defaults"] == {"cores": 1, "queue": None}
    assert infos["fake"]["healthy"] is True and infos["chain"]["supports_dependencies"] is True
    health = (await client.get("/healthz")).json()
    assert health["status"] == "ok"


async def test_a_backend_can_hold_jobs_queued_with_a_reason_and_release_them(
    make_client: Callable[..., Any],
) -> None:
    from tests.fakes import FakeBackend

    class Gate(FakeBackend):
        open = False

        def hold(self, job: Any) -> str | None:
            return None if Gate.open else "waiting for the gate"

    async with make_client({"gate": Gate}, default_backend="gate") as (client, app):
        job = await submit(client, name="held")
        with anyio.fail_after(5):
            while (await client.get(f"{API}/jobs/{job['id']}")).json()["reason"] is None:
                await anyio.sleep(0.01)
        held = (await client.get(f"{API}/jobs/{job['id']}")).json()
        assert held["state"] == "queued" and held["reason"] == "waiting for the gate"
        assert held["attempt"] == 0
        Gate.open = True
        app.state.catalog.running["gate"].context.wake()
        await wait_state(client, job["id"], "completed")


async def test_failed_attempts_are_retried_with_backoff_and_each_attempt_recorded(
    make_client: Callable[..., Any],
) -> None:
    async with make_client() as (client, app):
        job = await submit(client, spec="exit 5", max_retries=2, retry_delay=0.05)
        done = await wait_state(client, job["id"], "failed")
        assert done["attempt"] == 3 and done["exit_code"] == 5
        events = (await client.get(f"{API}/jobs/{job['id']}/events")).json()["items"]
        retries = [e["message"] for e in events if e["to_state"] == "queued"][1:]
        assert retries == [
            "attempt 1 failed (exited 5); retry 1 of 2 in 0.05 s",
            "attempt 2 failed (exited 5); retry 2 of 2 in 0.1 s",
        ]
        keys = [s.key for s in app.state.catalog.running["fake"].submitted]
        assert keys == [f"{job['id']}.1", f"{job['id']}.2", f"{job['id']}.3"]
        logs = {s.stdout_path.name for s in app.state.catalog.running["fake"].submitted}
        assert logs == {f"{job['id']}.stdout", f"{job['id']}.2.stdout", f"{job['id']}.3.stdout"}


async def test_idempotency_key_replays_the_same_job_and_rejects_another_body(
    client: httpx.AsyncClient,
) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first = await client.post(f"{API}/jobs", json={"spec": "true"}, headers=headers)
    again = await client.post(f"{API}/jobs", json={"spec": "true"}, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await client.post(f"{API}/jobs", json={"spec": "false"}, headers=headers)
    assert other.status_code == 409 and "different body" in other.json()["detail"]
    assert len((await client.get(f"{API}/jobs")).json()["items"]) == 1
