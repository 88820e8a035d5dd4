"""Backends report epoch seconds; job rows hold aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(epoch: float | None) -> datetime:
    """``epoch`` as a UTC datetime; now if the backend gave none."""
    return datetime.fromtimestamp(epoch, UTC) if epoch else datetime.now(UTC)
