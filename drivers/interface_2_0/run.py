"""The life of one submitted task on one component."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import anyio

from gantry.drivers.types import Key, Task, TaskInfo, TaskState


@dataclass(eq=False)
class TaskRun:
    """Book-keeping for one task: its state, counters, and how to stop it.

    ``task.task_params`` already hold the validated, coerced values.
    """

    task: Task
    key: Key
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: TaskState = TaskState.QUEUED
    msg: str = ""
    submitted_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None
    samples: int = 0
    missed: int = 0
    stop_requested: bool = False
    #: set once the run is final; ``task_stop`` and ``reset`` wait on it
    done: anyio.Event = field(default_factory=anyio.Event)
    #: the scope bounding the run (max_duration + grace); ``stop`` cancels it
    scope: anyio.CancelScope | None = None
    #: True while the runner waits for its next tick, so a stop may cancel at once
    sleeping: bool = False

    def info(self) -> TaskInfo:
        return TaskInfo(
            id=self.id,
            address=self.key[0],
            channel=self.key[1],
            task=self.task,
            state=self.state,
            msg=self.msg,
            submitted_at=self.submitted_at,
            started_at=self.started_at,
            ended_at=self.ended_at,
            samples=self.samples,
            missed=self.missed,
        )

    async def sleep_until(self, deadline: float) -> None:
        self.sleeping = True
        try:
            await anyio.sleep_until(deadline)
        finally:
            self.sleeping = False

    def request_stop(self, grace: float) -> None:
        """Stop at the next tick; a step in progress gets ``grace`` seconds to end."""
        self.stop_requested = True
        if self.scope is None:
            return
        if self.sleeping:
            self.scope.cancel()
        else:
            self.scope.deadline = min(self.scope.deadline, anyio.current_time() + grace)

    def finish(self, state: TaskState, msg: str) -> None:
        self.state, self.msg, self.ended_at = state, msg, time.time()
        self.done.set()
