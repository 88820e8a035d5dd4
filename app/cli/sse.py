"""A small server-sent-events parser (the WHATWG rules the server's streams need)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None


def parse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Events from decoded lines; comments (the server's pings) are skipped."""
    event, data, last_id = "message", list[str](), None
    for line in lines:
        if not line:
            if data:
                yield SseEvent(event, "\n".join(data), last_id)
            event, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\x00" not in value:
            last_id = value
    if data:  # a stream cut after the last data line still delivers it
        yield SseEvent(event, "\n".join(data), last_id)
