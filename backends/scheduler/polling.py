"""The poller's bookkeeping both schedulers share."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from gantry.backends.base import BackendContext, BackendMetrics, StatusReport

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PollStats:
    """What the poller did; the benchmarks and ``/metrics`` read it."""

    cycles: int = 0
    commands: int = 0
    max_commands_per_cycle: int = 0
    seconds: float = 0.0
    max_seconds: float = 0.0

    def count(self, commands: int) -> None:
        """Count one cycle that ran ``commands`` scheduler commands."""
        self.cycles += 1
        self.commands += commands
        self.max_commands_per_cycle = max(self.max_commands_per_cycle, commands)

    def took(self, seconds: float) -> float:
        """Count one cycle's time; returns it."""
        self.seconds += seconds
        self.max_seconds = max(self.max_seconds, seconds)
        return seconds

    def metrics(self, commands: Mapping[str, int]) -> BackendMetrics:
        return BackendMetrics(self.cycles, self.seconds, dict(commands))


def emit(context: BackendContext, ref: str, report: StatusReport) -> None:
    """Tell the engine; a failure there is the engine's problem, and the poller goes on."""
    try:
        context.report(ref, report)
    except Exception:
        log.exception("reporting %s for %s job %s failed", report.status, context.name, ref)
