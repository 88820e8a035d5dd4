"""Server-sent event helpers shared by the log and event streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sse_starlette.sse import EventSourceResponse

from gantry.schemas import EventPublic

SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "With `follow=true`: a `text/event-stream` of the same items.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def event_json(row: dict[str, Any]) -> str:
    return EventPublic.model_validate(row).model_dump_json()


def stream(events: AsyncIterator[dict[str, Any]]) -> EventSourceResponse:
    """An SSE response with keep-alive pings every 15 s."""
    return EventSourceResponse(events, ping=15, headers={"Cache-Control": "no-store"})


def dumps(data: Any) -> str:
    return json.dumps(data, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
