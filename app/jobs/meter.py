"""What the engine measures as it works: a narrow port, a no-op by default.

The engine and the writer call a :class:`Meter` once per event (a job handed
over, a job started, a batch committed) and know nothing of what records it;
the server's Prometheus metrics (:mod:`gantry.metrics`) implement it. Counts
that can be read when scraped (queue depths, jobs by state) are not pushed
here at all.
"""

from __future__ import annotations

from typing import Protocol


class Meter(Protocol):
    def dispatched(self, backend: str, seconds: float) -> None:
        """A job was handed to ``backend`` ``seconds`` after its dispatcher took it."""

    def started(self, backend: str, seconds: float) -> None:
        """A job began running on ``backend`` ``seconds`` after it was submitted."""

    def committed(self, seconds: float) -> None:
        """The writer committed one batch of operations in ``seconds`` (on its thread)."""


class NoMeter:
    """Measures nothing (unit tests, embedding without metrics)."""

    def dispatched(self, backend: str, seconds: float) -> None:
        pass

    def started(self, backend: str, seconds: float) -> None:
        pass

    def committed(self, seconds: float) -> None:
        pass
