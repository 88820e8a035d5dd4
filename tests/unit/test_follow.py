"""``sse.follow``: a growing file's events until its job ended, without losing the tail."""

from __future__ import annotations

from gantry.api.sse import Event, follow


async def test_what_was_written_just_before_the_end_is_still_sent() -> None:
    # The job writes "b" and ends between the first look and the first read:
    # follow asked "ended?" before reading, so it reads once more and sends "b".
    writes = [["a"], ["b"], []]
    active = iter([True, False, False])
    seen_ended: list[bool] = []

    async def read_new(ended: bool) -> list[Event]:
        seen_ended.append(ended)
        return [{"event": "log", "data": d} for d in writes.pop(0)]

    events = [e async for e in follow(lambda: next(active), read_new, lambda: {"event": "end"})]
    assert events == [
        {"event": "log", "data": "a"},
        {"event": "log", "data": "b"},
        {"event": "end"},
    ]
    assert seen_ended == [False, True, True]


async def test_nothing_new_while_running_waits_and_looks_again() -> None:
    states = iter([True, True, False])
    reads = 0

    async def read_new(ended: bool) -> list[Event]:
        nonlocal reads
        reads += 1
        return []

    events = [e async for e in follow(lambda: next(states), read_new, lambda: {"event": "end"})]
    assert events == [{"event": "end"}]
    assert reads == 3
