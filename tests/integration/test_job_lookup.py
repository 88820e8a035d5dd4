"""The job routes' shared lookup: a missing job is a 404, a bad query still a 422 first."""

from __future__ import annotations

import httpx
import pytest

API = "/api/v1"


@pytest.mark.parametrize("route", ["logs", "events", "data"])
async def test_a_job_that_does_not_exist_is_a_404_naming_it(
    client: httpx.AsyncClient, route: str
) -> None:
    response = await client.get(f"{API}/jobs/999/{route}")
    assert response.status_code == 404
    assert response.json() == {"detail": "job 999 does not exist"}


@pytest.mark.parametrize(
    ("query", "field"),
    [("logs?limit=0", "limit"), ("events?limit=0", "limit"), ("data?offset=-1", "offset")],
)
async def test_a_bad_query_is_a_422_even_for_a_missing_job(
    client: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await client.get(f"{API}/jobs/999/{query}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]
