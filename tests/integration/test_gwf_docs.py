"""docs/examples/gwf/workflow.py, the migration guide's workflow, on a real server and backend."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from gantry.backends.local import LocalBackend
from tests.integration.test_api_jobs import API, wait_state

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "gwf" / "workflow.py"


async def test_the_guides_workflow_runs_and_a_second_run_has_nothing_to_do(
    make_client: Callable[..., Any], tmp_path: Path
) -> None:
    shutil.copy(EXAMPLE, tmp_path / "workflow.py")
    body = {"source": EXAMPLE.read_text(), "working_dir": str(tmp_path)}
    async with make_client({"local": LocalBackend}, default_backend="local") as (client, _):
        answer = await client.post(f"{API}/workflows", json=body)
        assert answer.status_code == 201, answer.text
        names = [job["name"] for job in answer.json()["jobs"]]
        assert names == ["write", "count_a", "count_b", "total"]
        for job in answer.json()["jobs"]:
            await wait_state(client, job["id"], "completed", timeout=30)
        assert (await anyio.Path(tmp_path / "total.txt").read_text()).strip() == "5"
        again = await client.post(f"{API}/workflows", json=body)
        assert again.status_code == 200
        assert again.json()["up_to_date"] == ["write", "count_a", "count_b", "total"]
