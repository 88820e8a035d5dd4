"""The tutorial's backend (docs/examples/simple_backend.py) runs real jobs."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.integration.test_api_jobs import API, submit, wait_state

DOCS = Path(__file__).resolve().parents[2] / "docs" / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def test_tutorial_backend_runs_fails_times_out_and_cancels(
    make_client: Callable[..., Any], tmp_path: Path
) -> None:
    simple = load("simple_backend").SimpleBackend
    async with make_client({"simple": simple}, default_backend="simple") as (client, _):
        ok = await submit(client, spec="echo made by $GANTRY_JOB_NAME", name="tutorial")
        bad = await submit(client, spec="exit 4")
        slow = await submit(client, spec="sleep 30", options={"walltime": "0:0:1"})
        victim = await submit(client, spec="sleep 30")
        await wait_state(client, victim["id"], "running")
        await client.post(f"{API}/jobs/{victim['id']}/cancel")
        assert (await wait_state(client, ok["id"], "completed"))["exit_code"] == 0
        assert (await wait_state(client, bad["id"], "failed"))["exit_code"] == 4
        assert "walltime" in (await wait_state(client, slow["id"], "failed"))["reason"]
        await wait_state(client, victim["id"], "cancelled")
        log = (await client.get(f"{API}/jobs/{ok['id']}/logs")).json()
        assert log["text"] == "made by tutorial\n" and log["complete"] is True
        refused = await client.post(f"{API}/jobs", json={"spec": "true", "options": {"nice": 99}})
        assert refused.status_code == 422 and "between -20 and 19" in refused.text
