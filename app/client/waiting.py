"""Following event streams until jobs end, through server restarts."""

from __future__ import annotations

import time
from collections.abc import Callable

from gantry.client.core import Close, Flow, Request, Sleep, next_event, open_stream
from gantry.client.errors import ConnectionFailed, GantryError, StreamEnded
from gantry.schemas import EventPublic

TERMINAL = frozenset({"completed", "failed", "cancelled"})
#: Seconds a wait keeps reconnecting to a lost server (a restart takes a few).
RECONNECT_WINDOW = 60.0
MAX_BACKOFF = 5.0


def expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def watch(
    path: str, after: int, done: Callable[[EventPublic], bool], deadline: float | None
) -> Flow[bool]:
    """Hand each event of the stream at ``path`` (after id ``after``) to ``done``
    until it says True (-> True) or ``deadline`` passes (-> False).

    A stream cut short is opened again after the last event seen, so nothing
    is missed or seen twice; after :data:`RECONNECT_WINDOW` seconds without
    one good stream, the last failure is raised.
    """
    failures, lost_since = 0, None
    while not expired(deadline):
        left = None if deadline is None else max(0.01, deadline - time.monotonic())
        request = Request("GET", path, {"follow": True, "after": after}, read_timeout=left)
        lost: GantryError
        try:
            stream = yield from open_stream(request)
            while event := (yield from next_event(stream, lambda: expired(deadline))):
                if event.event != "job":
                    continue
                row = EventPublic.model_validate_json(event.data)
                after, failures, lost_since = row.id, 0, None
                if done(row):
                    yield Close(stream)
                    return True
            yield Close(stream)
            lost = StreamEnded(f"the event stream {path} ended before the jobs did")
        except ConnectionFailed as exc:
            lost = exc
        if expired(deadline):
            break
        failures += 1
        lost_since = lost_since or time.monotonic()
        if time.monotonic() - lost_since > RECONNECT_WINDOW:
            raise lost
        yield Sleep(min(0.2 * 2**failures, MAX_BACKOFF))
    return False
