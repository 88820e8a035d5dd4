"""A job with a payload goes to the backend that accepts payloads, whatever its name,
and that backend checks the payload itself (``Backend.validate_payload``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from gantry.backends.base import (
    Backend,
    BackendContext,
    InvalidPayload,
    JobSubmission,
    StatusReport,
)
from gantry.backends.registry import BackendEntry
from gantry.jobs.errors import SubmissionError
from gantry.jobs.service import Catalog, build_jobs


class CommandBackend(Backend):
    """Never runs anything: these tests stop at what would be stored."""

    name = "fake"

    async def submit(self, job: JobSubmission, dependencies: Sequence[str]) -> str:
        raise AssertionError("not submitted in these tests")

    async def cancel(self, ref: str) -> None:
        pass

    async def status(self, refs: Sequence[str]) -> dict[str, StatusReport]:
        return {}


class PayloadBackend(CommandBackend):
    """Takes payloads with a ``steps`` list; refuses an empty one."""

    name = "lab"
    accepts_payloads: ClassVar[bool] = True

    async def validate_payload(self, payload: Any) -> dict[str, Any]:
        if not payload.get("steps"):
            raise InvalidPayload(("steps",), "give at least one step")
        return {"steps": list(payload["steps"]), "checked": True}


#: Every field build_jobs reads, at the API's defaults.
DEFAULTS: dict[str, Any] = {
    "name": "job",
    "backend": None,
    "spec": None,
    "payload": None,
    "options": {},
    "depends_on": [],
    "env": {},
    "working_dir": None,
    "inputs": [],
    "outputs": [],
    "tags": [],
    "priority": 0,
    "max_retries": 0,
    "retry_delay": 10.0,
}


def Request(**fields: Any) -> SimpleNamespace:
    """A plain request: build_jobs needs no REST model."""
    return SimpleNamespace(**(DEFAULTS | fields))


def _catalog(tmp_path: Path, *classes: type[CommandBackend]) -> Catalog:
    running = {
        cls.name: cls(BackendContext(name=cls.name, data_dir=tmp_path, config={}, report=print))
        for cls in classes
    }
    installed = {n: BackendEntry(n, "tests", type(b), None) for n, b in running.items()}
    return Catalog(running=running, installed=installed, default="fake")


async def test_a_payload_goes_to_the_backend_that_accepts_payloads(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, CommandBackend, PayloadBackend)
    [job] = await build_jobs([Request(payload={"steps": [1]})], catalog, tmp_path, batch=False)
    assert (job.backend, job.kind, job.payload) == (
        "lab",
        "instrument",
        {"steps": [1], "checked": True},
    )
    [command] = await build_jobs([Request(spec="true")], catalog, tmp_path, batch=False)
    assert (command.backend, command.kind, command.payload) == ("fake", "command", None)


async def test_the_backends_refusal_names_the_field_within_the_submission(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, CommandBackend, PayloadBackend)
    requests = [Request(spec="true"), Request(payload={"steps": []})]
    with pytest.raises(SubmissionError, match="give at least one step") as refused:
        await build_jobs(requests, catalog, tmp_path, batch=True)
    assert refused.value.field == ("jobs", 1, "payload", "steps")


async def test_a_payload_for_a_command_backend_is_refused(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, CommandBackend, PayloadBackend)
    with pytest.raises(SubmissionError, match="runs on the 'lab' backend") as refused:
        await build_jobs(
            [Request(backend="fake", payload={"steps": [1]})], catalog, tmp_path, batch=False
        )
    assert refused.value.field == ("backend",)


async def test_without_a_backend_for_payloads_the_payload_is_refused(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, CommandBackend)
    with pytest.raises(SubmissionError, match="runs no instruments") as refused:
        await build_jobs([Request(payload={"steps": [1]})], catalog, tmp_path, batch=False)
    assert refused.value.field == ("payload",)


async def test_a_command_backend_refuses_payloads_by_default(tmp_path: Path) -> None:
    backend = _catalog(tmp_path, CommandBackend).running["fake"]
    assert not backend.accepts_payloads
    with pytest.raises(InvalidPayload, match="give spec"):
        await backend.validate_payload({"steps": [1]})
    assert backend.data(1, 1) is None
