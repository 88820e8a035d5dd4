"""/workflows: run an uploaded gwf workflow file as one batch.

The file is Python and runs on the server (gwf's loader executes it), so
this route needs the ``submit`` scope whenever tokens exist, like every
POST. The file is written next to the working dir's other files under a
hidden temporary name (so its relative paths and imports are the working
dir's), loaded, and removed again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gantry.api.auth import TokenNameDep
from gantry.api.deps import CatalogDep, EngineDep, ReaderDep, SettingsDep
from gantry.jobs.errors import SubmissionError
from gantry.jobs.service import build_jobs
from gantry.jobs.store import JobFilter, list_jobs
from gantry.schemas import MAX_SPEC, JobCreate, PathText
from gantry.workflows.load import WorkflowLoadError, load_workflow
from gantry.workflows.plan import WorkflowPlan, plan_workflow, workflow_tag

router = APIRouter(prefix="/workflows", tags=["workflows"])
ACTIVE = ("queued", "submitted", "running", "cancelling")


class WorkflowUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(min_length=1, max_length=MAX_SPEC, description="The workflow.py text.")
    filename: str = Field(
        "workflow.py",
        max_length=200,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.py$",
        description="The file's name, for messages and to tell workflows apart.",
    )
    object: str = Field("gwf", max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    targets: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=10_000, description="gwf's patterns; default: all."
    )
    working_dir: PathText | None = Field(
        None, description="Absolute directory the workflow lives in; default: <data_dir>/work."
    )
    backend: str | None = Field(None, max_length=64)


def _plan(upload: WorkflowUpload, where: Path, active: dict[str, int]) -> WorkflowPlan:
    shown = where / upload.filename
    digest = hashlib.sha256(upload.source.encode()).hexdigest()[:16]
    temporary = where / f".gantry-upload-{digest}-{os.getpid()}.py"
    temporary.write_text(upload.source)
    try:
        loaded = load_workflow(f"{temporary}:{upload.object}", shown_as=shown)
        return plan_workflow(loaded, upload.targets, active=active, backend=upload.backend)
    finally:
        temporary.unlink(missing_ok=True)


async def _active(read: ReaderDep, tag: str) -> dict[str, int]:
    """Target name -> its newest job that has not ended (such a target is not resubmitted)."""
    active: dict[str, int] = {}
    before = None
    while True:
        rows = await read(
            list_jobs, JobFilter(states=ACTIVE, tag=tag), before_id=before, limit=1000
        )
        for row in rows:
            active.setdefault(row["name"], row["id"])
        if len(rows) < 1000:
            return active
        before = rows[-1]["id"]


def _requests(plan: WorkflowPlan) -> list[JobCreate]:
    requests = []
    for i, job in enumerate(plan.jobs):
        try:
            requests.append(JobCreate.model_validate(job))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise SubmissionError(
                ("source",), f"{plan.path}: target {job['name']} (#{i}): {first['msg']}"
            ) from None
    return requests


@router.post(
    "",
    status_code=201,
    responses={
        200: {"description": "Every selected target is up to date or already submitted."},
    },
)
async def run_workflow(
    upload: WorkflowUpload,
    engine: EngineDep,
    catalog: CatalogDep,
    settings: SettingsDep,
    read: ReaderDep,
    token_name: TokenNameDep,
) -> JSONResponse:
    """Run an uploaded gwf workflow: one batch of the targets that should run (as ``gwf run``).

    Dependencies come from inputs and outputs; targets that are up to date or
    still running from an earlier upload are left out. Executes the file on
    the server: needs the ``submit`` scope.
    """
    where = Path(upload.working_dir) if upload.working_dir else engine.work_dir
    if not await anyio.Path(where).is_dir():
        raise SubmissionError(
            ("working_dir",), f"working_dir {where} is not an existing directory: create it"
        )
    active = await _active(read, workflow_tag(where / upload.filename))
    try:
        plan = await anyio.to_thread.run_sync(_plan, upload, where, active)
    except WorkflowLoadError as exc:
        field = ("targets",) if exc.target and exc.target in upload.targets else ("source",)
        raise SubmissionError(field, str(exc)) from None
    if len(plan.jobs) > settings.max_batch_jobs:
        raise SubmissionError(
            ("targets",),
            f"{len(plan.jobs)} targets to run, at most {settings.max_batch_jobs}: "
            "name fewer targets",
        )
    body: dict[str, Any] = {
        "jobs": [],
        "up_to_date": plan.up_to_date,
        "already_submitted": plan.already_active,
        "warnings": [],
    }
    if not plan.jobs:
        return JSONResponse(body, status_code=200)
    new = await build_jobs(
        _requests(plan), catalog, engine.work_dir, batch=True, submitted_by=token_name
    )
    created = await engine.submit(new)
    body["jobs"] = [
        {"id": job_id, "name": job.name, "backend": job.backend, "warnings": job.warnings}
        for job_id, job in zip(created.ids, created.new, strict=True)
    ]
    body["warnings"] = [f"target {job.name}: {w}" for job in created.new for w in job.warnings]
    return JSONResponse(body, status_code=201)
