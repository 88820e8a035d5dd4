"""The base both scheduler backends build on (psij's template: the scheduler supplies
its commands and parsing; naming, counting and reporting live here once)."""

from __future__ import annotations

from typing import ClassVar

from gantry.backends.base import Backend, BackendContext, BackendMetrics, StatusReport
from gantry.backends.scheduler.commands import Commands
from gantry.backends.scheduler.polling import PollStats, emit


class SchedulerBackend(Backend):
    """A batch scheduler's backend: chains dependencies and runs arrays natively,
    names jobs ``<prefix>-<key>``, counts its commands and poll cycles."""

    supports_dependencies: ClassVar[bool] = True
    supports_arrays: ClassVar[bool] = True

    def __init__(self, context: BackendContext, commands: Commands, prefix: str) -> None:
        super().__init__(context)
        #: Every command this backend ran, by name (benchmarks and /metrics read it).
        self.commands = commands
        self.poll_stats = PollStats()
        self.prefix = prefix

    def job_name(self, key: str) -> str:
        return f"{self.prefix}-{key}"

    def metrics(self) -> BackendMetrics:
        return self.poll_stats.metrics(self.commands.counts)

    async def find(self, key: str) -> str | None:
        """The ref of one submission, by its job name (after a failed submit call)."""
        return (await self.lookup([key])).get(key)

    def _emit(self, ref: str, report: StatusReport) -> None:
        emit(self.context, ref, report)
