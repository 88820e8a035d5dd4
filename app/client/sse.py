"""A small server-sent-events decoder (the WHATWG rules the server's streams need).

Push style (feed one line, maybe get an event) so the sans-IO core can drive
it from either transport.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None


@dataclass(slots=True)
class SseDecoder:
    """Lines in, events out; comments (the server's pings) are skipped."""

    last_id: str | None = None
    _event: str = "message"
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self.last_id = value
        return None

    def end(self) -> SseEvent | None:
        """A stream cut after the last data line still delivers it."""
        return self._dispatch()

    def _dispatch(self) -> SseEvent | None:
        event = SseEvent(self._event, "\n".join(self._data), self.last_id) if self._data else None
        self._event, self._data = "message", []
        return event


def parse(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Every event of a whole stream of decoded lines."""
    decoder = SseDecoder()
    for line in lines:
        if (event := decoder.feed(line)) is not None:
            yield event
    if (event := decoder.end()) is not None:
        yield event
