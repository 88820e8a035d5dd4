"""Tokens: every endpoint without a token, with a read token, with a submit token."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine

from gantry import db
from gantry.main import StartupRefused, create_app
from gantry.settings import Settings
from gantry.tokens import TokenError, create_token, implied, list_tokens, revoke_token
from tests.fakes import FakeBackend


def make_token(settings: Settings, *scopes: str, name: str = "test") -> str:
    db.upgrade(settings.resolved_database_url)
    engine = create_engine(settings.resolved_database_url)
    with engine.begin() as conn:
        _, token = create_token(conn, name, list(scopes))
    engine.dispose()
    return token


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI schema under /api/v1, path parameters filled."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/api/v1"):
            for method in operations:
                found.append((method.upper(), path.replace("{job_id}", "1")))
    return found


async def test_every_endpoint_checks_the_token_and_its_scope(
    make_client: Callable[..., Any], settings: Settings
) -> None:
    read = make_token(settings, "read")
    submit = make_token(settings, "submit")
    async with make_client() as (client, app):
        routes = api_routes(app)
        assert len(routes) >= 8
        assert (await client.get("/healthz")).status_code == 200
        for method, path in routes:
            anonymous = await client.request(method, path)
            assert anonymous.status_code == 401, (method, path)
            assert "gantry token create" in anonymous.json()["detail"]
            forged = await client.request(method, path, headers={"Authorization": "Bearer gty_x"})
            assert forged.status_code == 401, (method, path)
            as_reader = await client.request(
                method, path, headers={"Authorization": f"Bearer {read}"}
            )
            if method == "GET":
                assert as_reader.status_code not in (401, 403), (method, path)
            else:
                assert as_reader.status_code == 403, (method, path)
                assert "--scope submit" in as_reader.json()["detail"]
            as_submitter = await client.request(
                method, path, headers={"Authorization": f"Bearer {submit}"}
            )
            assert as_submitter.status_code not in (401, 403), (method, path)
        # EventSource cannot send headers: the query parameter works too
        query = await client.get("/api/v1/jobs", params={"access_token": read})
        assert query.status_code == 200


async def test_a_job_records_the_name_of_the_token_that_submitted_it(
    make_client: Callable[..., Any], settings: Settings
) -> None:
    lab = make_token(settings, "submit", name="lab bench 3")
    robot = make_token(settings, "submit", name="robot")
    async with make_client() as (client, _):
        one = await client.post(
            "/api/v1/jobs",
            json={"name": "one", "spec": "true"},
            headers={"Authorization": f"Bearer {lab}"},
        )
        assert one.status_code == 201, one.text
        batch = await client.post(
            "/api/v1/jobs/batch",
            json={"jobs": [{"name": "a", "spec": "true"}, {"name": "b", "spec": "true"}]},
            headers={"Authorization": f"Bearer {robot}"},
        )
        assert batch.status_code == 201, batch.text
        ids = [one.json()["id"], *(j["id"] for j in batch.json()["jobs"])]
        auth = {"Authorization": f"Bearer {lab}"}
        shown = [(await client.get(f"/api/v1/jobs/{i}", headers=auth)).json() for i in ids]
    assert [job["submitted_by"] for job in shown] == ["lab bench 3", "robot", "robot"]


def test_tokens_are_hashed_revocable_and_scoped(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    db.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        token_id, token = create_token(conn, "ci", ["submit"])
        with pytest.raises(TokenError, match="scopes must be among"):
            create_token(conn, "x", ["root"])
        assert revoke_token(conn, token_id) is True
        assert revoke_token(conn, token_id) is False
        assert list_tokens(conn)[0].revoked_at is not None
    raw = (tmp_path / "g.db").read_bytes()
    engine.dispose()
    assert token.encode() not in raw
    assert implied(["submit"]) == {"read", "submit"} and implied(["read"]) == {"read"}


async def test_a_server_on_a_public_address_refuses_to_start_without_tokens(
    settings: Settings,
) -> None:
    app = create_app(
        settings.model_copy(update={"host": "0.0.0.0"}), backends={"fake": FakeBackend}
    )
    with pytest.raises(StartupRefused, match="refusing to listen on 0.0.0.0 without API tokens"):
        async with app.router.lifespan_context(app):
            pass
    make_token(settings, "admin")
    async with app.router.lifespan_context(app):
        pass
