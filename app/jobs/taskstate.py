"""The engine's in-memory picture of an unfinished array job's tasks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class TaskProgress:
    """Which tasks run and which ended; tasks not in either have not started."""

    count: int
    running: set[int] = field(default_factory=set)
    #: index -> final state
    ended: dict[int, str] = field(default_factory=dict)
    #: why the first task that failed failed, for the array's reason
    first_failure: str | None = None

    def seed(self, stored: dict[int, str]) -> None:
        """What the store recorded before a restart."""
        for index, state in stored.items():
            if state == "running":
                self.running.add(index)
            else:
                self.ended[index] = state
