"""/metrics: the Prometheus text exposition (see :mod:`gantry.metrics`).

Outside ``/api/v1`` where scrapers look for it, but behind the same tokens:
once a token exists, a scrape needs one with the ``read`` scope
(``authorization: credentials_file`` in Prometheus's scrape config).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OPENMETRICS

from gantry.api.auth import require_for_method
from gantry.metrics import Metrics

router = APIRouter(tags=["metrics"], dependencies=[require_for_method()])


async def _metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


TEXT = {"schema": {"type": "string"}}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: TEXT, OPENMETRICS: TEXT}}},
)
async def metrics(
    server: Annotated[Metrics, Depends(_metrics)],
    accept: Annotated[str, Header(include_in_schema=False)] = "",
) -> Response:
    """Jobs by state and backend, latencies, backend polls, driver samples, writer, leases.

    Prometheus text, or OpenMetrics when the Accept header asks for it.
    """
    body, content_type = await server.scrape(accept)
    return Response(body, media_type=content_type)
