"""schemathesis over the whole OpenAPI schema against a live server.

Hundreds of generated requests (valid and invalid) at every operation: no
5xx, and every response must match the schema and a documented status code.
The server runs the in-memory fake backend: generated scripts are never run.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from sqlalchemy import create_engine

from gantry import db
from gantry.main import create_app
from gantry.settings import Settings
from gantry.tokens import create_token
from tests.fakes import FakeBackend

EXAMPLES = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server that requires tokens, and an admin token for it."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "var"
    port = free_port()
    # The demo devices file, so the instrument routes have components to talk to.
    demo = Path(__file__).resolve().parents[2] / "app" / "instruments" / "demo-devices.toml"
    settings_ = Settings(data_dir=data_dir, default_backend="fake", port=port, devices_file=demo)
    db.upgrade(settings_.resolved_database_url)
    database = create_engine(settings_.resolved_database_url)
    with database.begin() as conn:
        _, token = create_token(conn, "fuzz", ["admin"])
    database.dispose()
    app = create_app(settings_, backends={"fake": FakeBackend})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    else:
        pytest.fail("the server did not start within 20 s")
    yield url, token
    server.should_exit = True
    thread.join(timeout=20)


def test_every_operation_answers_within_its_schema(live_server: tuple[str, str]) -> None:
    # schemathesis's pytest plugin does not run on this pytest; drive its
    # strategies with hypothesis directly, one operation at a time.
    url, token = live_server
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 24  # jobs, logs, events, backends, instruments, data
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            # follow=true streams until a job ends (or forever for /events):
            # the streams have their own tests; here every answer is a body.
            if case.query and "follow" in case.query:
                case.query["follow"] = "false"
            case.call_and_validate(
                timeout=10,
                headers={"Authorization": f"Bearer {token}"},
                # 422 for schema-valid bodies is right where validity depends on
                # state (an unknown backend, a missing working_dir, a job id).
                excluded_checks=[positive_data_acceptance],
            )

        check()
