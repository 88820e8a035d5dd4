"""Jobs waiting for cores and memory: highest priority first, then the oldest job."""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass

from gantry.backends.base import JobSubmission
from gantry.backends.local.limits import Request


@dataclass(frozen=True, slots=True)
class Queued:
    job: JobSubmission
    request: Request


class PendingQueue:
    """A heap ordered by ``(-priority, job_id)`` with O(1) removal by key.

    Removal only forgets the key; the stale heap entry is skipped when it
    surfaces (a sequence number tells it from a later entry of the same key).
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, int, str]] = []
        self._live: dict[str, tuple[int, Queued]] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def push(self, item: Queued) -> None:
        job = item.job
        seq = next(self._seq)
        self._live[job.key] = (seq, item)
        heapq.heappush(self._heap, (-job.priority, job.job_id, seq, job.key))

    def remove(self, key: str) -> Queued | None:
        entry = self._live.pop(key, None)
        return None if entry is None else entry[1]

    def peek(self) -> Queued | None:
        heap = self._heap
        while heap:
            _, _, seq, key = heap[0]
            entry = self._live.get(key)
            if entry is not None and entry[0] == seq:
                return entry[1]
            heapq.heappop(heap)
        return None

    def pop(self) -> Queued | None:
        item = self.peek()
        if item is not None:
            heapq.heappop(self._heap)
            del self._live[item.job.key]
        return item
