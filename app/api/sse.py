"""Server-sent event helpers shared by the log, data and event streams."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
from sse_starlette.sse import EventSourceResponse

from gantry.schemas import EventPublic

SSE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "With `follow=true`: a `text/event-stream` of the same items.",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


#: Seconds between looks at a followed file that had nothing new.
FOLLOW_INTERVAL = 0.2

Event = dict[str, Any]


async def follow(
    active: Callable[[], bool],
    read_new: Callable[[bool], Awaitable[list[Event]]],
    end: Callable[[], Event],
) -> AsyncIterator[Event]:
    """The events of a growing file until its job ended, then ``end()``.

    ``read_new(ended)`` returns the events of what was written since its last
    call (``ended``: the job wrote its last). Whether the job ended is asked
    *before* reading, so nothing written just before the end is lost.
    """
    while True:
        ended = not active()
        events = await read_new(ended)
        if events:
            for event in events:
                yield event
            continue
        if ended:
            yield end()
            return
        await anyio.sleep(FOLLOW_INTERVAL)


def event_json(row: dict[str, Any]) -> str:
    return EventPublic.model_validate(row).model_dump_json()


def stream(events: AsyncIterator[dict[str, Any]]) -> EventSourceResponse:
    """An SSE response with keep-alive pings every 15 s."""
    return EventSourceResponse(events, ping=15, headers={"Cache-Control": "no-store"})


def dumps(data: Any) -> str:
    return json.dumps(data, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v))
