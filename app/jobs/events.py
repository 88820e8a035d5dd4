"""In-process fan-out of job events to live subscribers (SSE streams).

Events are published only after their transaction committed, so a streamed
event is always one that a later ``GET`` can read back. A subscriber that
falls too far behind is dropped; it reconnects with ``Last-Event-ID`` and
reads the gap from the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

Event = dict[str, Any]
BUFFER = 10_000


class EventHub:
    def __init__(self) -> None:
        self._subscribers: dict[MemoryObjectSendStream[Event], int | None] = {}

    @contextmanager
    def subscribe(self, job_id: int | None = None) -> Iterator[MemoryObjectReceiveStream[Event]]:
        """Live events (of one job, or all); closed when the block ends."""
        send, receive = anyio.create_memory_object_stream[Event](BUFFER)
        self._subscribers[send] = job_id
        try:
            yield receive
        finally:
            self._subscribers.pop(send, None)
            send.close()
            receive.close()

    def publish(self, events: Sequence[Event]) -> None:
        for send, job_id in list(self._subscribers.items()):
            for event in events:
                if job_id is not None and event["job_id"] != job_id:
                    continue
                try:
                    send.send_nowait(event)
                except anyio.WouldBlock:
                    # Too slow: end its stream rather than grow without bound.
                    self._subscribers.pop(send, None)
                    send.close()
                    break
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    self._subscribers.pop(send, None)
                    break

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
