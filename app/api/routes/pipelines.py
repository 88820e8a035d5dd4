"""/pipelines: samples loaded and ejected, pipelines made ready (tomato's workflow)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from gantry.api.deps import InstrumentsDep
from gantry.api.errors import documented
from gantry.instruments.schemas import NAME_PATTERN, PipelineInfo, ReadyWrite, SampleLoad

router = APIRouter(prefix="/pipelines", tags=["pipelines"])

PipelineName = Annotated[str, Path(max_length=200, pattern=NAME_PATTERN)]


@router.get("", response_model=list[PipelineInfo])
async def list_pipelines(instruments: InstrumentsDep) -> list[dict[str, Any]]:
    """Every pipeline: its components by role, sample, readiness and running job."""
    return instruments.pipelines()


@router.get("/{name}", response_model=PipelineInfo, responses=documented(404))
async def show_pipeline(name: PipelineName, instruments: InstrumentsDep) -> dict[str, Any]:
    return instruments.pipeline(name)


@router.post("/{name}/load", response_model=PipelineInfo, responses=documented(404, 409))
async def load_sample(
    name: PipelineName, body: SampleLoad, instruments: InstrumentsDep
) -> dict[str, Any]:
    """Load a sample into an idle, empty pipeline."""
    return await instruments.load_sample(name, body.sample)


@router.post("/{name}/eject", response_model=PipelineInfo, responses=documented(404, 409))
async def eject_sample(name: PipelineName, instruments: InstrumentsDep) -> dict[str, Any]:
    """Remove the sample of an idle pipeline (it is then not ready)."""
    return await instruments.eject(name)


@router.post("/{name}/ready", response_model=PipelineInfo, responses=documented(404, 409))
async def mark_ready(
    name: PipelineName, instruments: InstrumentsDep, body: ReadyWrite | None = None
) -> dict[str, Any]:
    """Mark a pipeline holding a sample ready (``{"ready": false}``: not ready)."""
    return await instruments.set_ready(name, True if body is None else body.ready)
