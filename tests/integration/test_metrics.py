"""/metrics scraped from the real app and parsed with prometheus_client's own parser:
its job counts are the API's, its latencies count the jobs that ran, the
backends' and drivers' counters are theirs, and it is behind the tokens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import Connection, create_engine, text

from gantry.backends.base import BackendMetrics
from gantry.metrics import Latencies, Metrics, StoredCounts
from gantry.settings import Settings
from tests.fakes import FakeBackend
from tests.integration.instruments import (
    instrument_app,
    job_body,
    ready,
    samples,
    task,
    wait_job,
)
from tests.integration.test_auth import make_token

API = "/api/v1"
TERMINAL = ("completed", "failed", "cancelled")


class PollingBackend(FakeBackend):
    """The fake, claiming the polls and commands a scheduler backend would count."""

    name = "polling"

    def metrics(self) -> BackendMetrics:
        return BackendMetrics(polls=3, poll_seconds=0.75, commands={"squeue": 3, "sbatch": 2})


async def scrape(client: httpx.AsyncClient, **headers: str) -> dict[str, list[Sample]]:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    [match] = [s for s in samples[name] if all(s.labels.get(k) == v for k, v in labels.items())]
    return float(match.value)


async def settle(client: httpx.AsyncClient, ids: list[int], *states: str) -> None:
    with anyio.fail_after(20):
        for job_id in ids:
            while (await client.get(f"{API}/jobs/{job_id}")).json()["state"] not in states:
                await anyio.sleep(0.01)


async def test_job_counts_and_latencies_match_the_api(make_client: Callable[..., Any]) -> None:
    backends = {"fake": FakeBackend, "polling": PollingBackend}
    async with make_client(backends) as (client, _):
        scripts = ["true"] * 5 + ["exit 3"] * 2 + ["hang"] * 2
        batch = [{"name": f"j{i}", "spec": s} for i, s in enumerate(scripts)]
        batch += [{"name": f"p{i}", "spec": "true", "backend": "polling"} for i in range(3)]
        response = await client.post(f"{API}/jobs/batch", json={"jobs": batch})
        assert response.status_code == 201, response.text
        ids = [job["id"] for job in response.json()["jobs"]]
        await settle(client, ids[:7] + ids[9:], *TERMINAL)
        await settle(client, ids[7:9], "running")
        cancelled = ids[8]
        await client.post(f"{API}/jobs/{cancelled}/cancel")
        await settle(client, [cancelled], "cancelled")
        waits = {"name": "waits", "spec": "true", "depends_on": [ids[7]]}
        assert (await client.post(f"{API}/jobs", json=waits)).status_code == 201

        found = await scrape(client)
        stats = (await client.get(f"{API}/stats")).json()["by_state"]
        for state in ("queued", "submitted", "running", "completed", "failed", "cancelled"):
            total = sum(value(found, "gantry_jobs", backend=b, state=state) for b in backends)
            assert total == stats.get(state, {"jobs": 0})["jobs"], state
        for backend in backends:
            for state in ("queued", "running", "completed", "failed", "cancelled"):
                page = await client.get(
                    f"{API}/jobs", params={"backend": backend, "state": state, "limit": 1000}
                )
                listed = len(page.json()["items"])
                assert value(found, "gantry_jobs", backend=backend, state=state) == listed
        assert value(found, "gantry_jobs", backend="fake", state="completed") == 5
        assert value(found, "gantry_jobs", backend="fake", state="queued") == 1

        # Every job handed over counts once in dispatch; each that ran, once in started.
        assert value(found, "gantry_dispatch_seconds_count", backend="fake") == 9
        assert value(found, "gantry_dispatch_seconds_count", backend="polling") == 3
        assert value(found, "gantry_job_submit_to_running_seconds_count", backend="fake") == 9
        running_sum = value(found, "gantry_job_submit_to_running_seconds_sum", backend="fake")
        assert 0 <= running_sum < 9 * 20
        assert value(found, "gantry_writer_commit_seconds_count") >= 1
        assert value(found, "gantry_writer_queue_depth") >= 0
        assert value(found, "gantry_database_up") == 1
        assert "process_resident_memory_bytes" in found

        assert value(found, "gantry_backend_poll_seconds_count", backend="polling") == 3
        assert value(found, "gantry_backend_poll_seconds_sum", backend="polling") == 0.75
        assert value(found, "gantry_backend_commands_total", command="sbatch") == 2
        assert not [
            s for s in found["gantry_backend_poll_seconds_count"] if s.labels["backend"] == "fake"
        ]

        # Scraped again: counters never go back, latencies are not counted twice.
        again = await scrape(client)
        assert value(again, "gantry_dispatch_seconds_count", backend="fake") == 9


async def test_lease_age_of_each_server_row(make_client: Callable[..., Any]) -> None:
    async with make_client() as (client, app):
        found = await scrape(client)
        reader = app.state.reader

        def servers(conn: Connection) -> list[str]:
            return [row[0] for row in conn.execute(text("SELECT id FROM gantry_server"))]

        ids = await reader(servers)
        ages = {
            s.labels["server"]: s.value for s in found.get("gantry_server_lease_age_seconds", [])
        }
        assert set(ages) == set(ids)
        assert all(0 <= age < 60 for age in ages.values())


async def test_metrics_need_a_read_token_once_tokens_exist(
    make_client: Callable[..., Any], settings: Settings
) -> None:
    read = make_token(settings, "read")
    async with make_client() as (client, _):
        anonymous = await client.get("/metrics")
        assert anonymous.status_code == 401
        assert "gantry token create" in anonymous.json()["detail"]
        forged = await client.get("/metrics", headers={"Authorization": "Bearer gty_nope"})
        assert forged.status_code == 401
        found = await scrape(client, Authorization=f"Bearer {read}")
        assert "gantry_jobs" in found


async def test_openmetrics_when_the_scraper_asks_for_it(client: httpx.AsyncClient) -> None:
    accept = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
    response = await client.get("/metrics", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    names = {f.name for f in openmetrics_families(response.text)}
    assert {"gantry_jobs", "gantry_dispatch_seconds", "gantry_backend_commands"} <= names


async def test_driver_samples_and_lost_samples_are_the_jobs(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", default_backend="fake")
    async with instrument_app(settings) as (client, _):
        await ready(client, "pip-1")
        body = job_body(task(max_duration=0.5, sampling_interval=0.05))
        response = await client.post(f"{API}/jobs", json=body)
        assert response.status_code == 201, response.text
        done = await wait_job(client, response.json()["id"])
        assert done["state"] == "completed", done
        found = await scrape(client)
        stored = value(found, "gantry_driver_samples_total", driver="example_counter")
        data = await samples(client, done["id"])
        assert stored == sum(len(role["samples"]) for role in data["roles"]) == 10
        assert value(found, "gantry_driver_samples_lost_total", driver="example_counter") == 0
        assert value(found, "gantry_jobs", backend="instrument", state="completed") == 1


async def test_ended_counts_are_reused_for_a_while_unfinished_ones_never(
    make_client: Callable[..., Any], settings: Settings
) -> None:
    database = create_engine(settings.resolved_database_url)
    try:
        async with make_client() as (client, _):
            first = await client.post(f"{API}/jobs", json={"name": "a", "spec": "true"})
            await settle(client, [first.json()["id"]], "completed")
            counts = StoredCounts(database)
            counts.REUSE = 10**9  # as if counting the ended jobs had taken long
            assert counts.read().jobs[("fake", "completed")] == 1
            second = await client.post(f"{API}/jobs", json={"name": "b", "spec": "true"})
            hang = await client.post(f"{API}/jobs", json={"name": "c", "spec": "hang"})
            await settle(client, [second.json()["id"]], "completed")
            await settle(client, [hang.json()["id"]], "running")
            reused = counts.read().jobs
            assert reused[("fake", "completed")] == 1  # reused
            assert reused[("fake", "running")] == 1  # counted again
            assert StoredCounts(database).read().jobs[("fake", "completed")] == 2
    finally:
        database.dispose()


def test_a_latency_on_a_bucket_bound_counts_in_that_bucket() -> None:
    latencies = Latencies("t_seconds", "test", (0.1, 1.0), "backend")
    for value in (0.05, 0.1, 0.5, 1.0, 7.0):
        latencies.observe("local", value)
    samples = {(s.name, s.labels.get("le")): s.value for s in latencies.family().samples}
    assert samples[("t_seconds_bucket", "0.1")] == 2
    assert samples[("t_seconds_bucket", "1.0")] == 4
    assert samples[("t_seconds_bucket", "+Inf")] == samples[("t_seconds_count", None)] == 5
    assert samples[("t_seconds_sum", None)] == 8.65


class Depth:
    depth = 7


async def test_a_scrape_while_the_database_is_away_still_answers() -> None:
    # Nothing listens on port 1: every connection is refused at once.
    away = create_engine("postgresql+psycopg://gantry@127.0.0.1:1/gantry")
    try:
        metrics = Metrics(away)
        metrics.read_from(backends={}, writer=Depth())
        body, _ = await metrics.scrape()
        text = body.decode()
        found = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
        assert found["gantry_database_up"] == 0
        assert found["gantry_writer_queue_depth"] == 7
        assert "gantry_jobs" not in found and "gantry_server_lease_age_seconds" not in found
    finally:
        away.dispose()
