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
    #: the ended tasks' costs, summed: CPU user and system seconds, the largest peak
    cpu_user: float = 0.0
    cpu_system: float = 0.0
    max_rss: int | None = None
    measured: bool = False

    def add_cost(self, user: float | None, system: float | None, rss: int | None) -> None:
        if user is not None or system is not None:
            self.measured = True
            self.cpu_user += user or 0.0
            self.cpu_system += system or 0.0
        if rss is not None:
            self.max_rss = max(self.max_rss or 0, rss)

    def cost(self) -> dict[str, float | int]:
        """The array's accounting columns: its tasks' CPU summed, the largest peak."""
        values: dict[str, float | int] = {}
        if self.measured:
            values["cpu_user_seconds"] = self.cpu_user
            values["cpu_system_seconds"] = self.cpu_system
        if self.max_rss is not None:
            values["max_rss_bytes"] = self.max_rss
        return values

    def seed(self, stored: dict[int, str]) -> None:
        """What the store recorded before a restart."""
        for index, state in stored.items():
            if state == "running":
                self.running.add(index)
            else:
                self.ended[index] = state
