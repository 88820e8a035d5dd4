"""A job's accounting: what a backend measured, as job columns and as shown.

Backends report an :class:`~gantry.backends.base.Accounting` with a job's
final status; it is stored in the job row, in the same transaction as the
final state and its event, and shown as one ``accounting`` object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gantry.backends.base import Accounting

#: Accounting field -> job column (the name says the unit).
COLUMNS = {
    "cpu_user": "cpu_user_seconds",
    "cpu_system": "cpu_system_seconds",
    "max_rss": "max_rss_bytes",
    "wall": "wall_seconds",
    "driver_time": "driver_seconds",
    "samples": "samples",
}


def accounting_values(accounting: Accounting | None) -> dict[str, Any]:
    """The job columns a reported accounting sets (only what was measured)."""
    if accounting is None:
        return {}
    values = {column: getattr(accounting, name) for name, column in COLUMNS.items()}
    return {column: value for column, value in values.items() if value is not None}


def accounting_of_row(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """A stored job's accounting, or None if its backend measured nothing.

    Without a measured wall time, an ended job's is its end minus its start.
    """
    shown = {column: row.get(column) for column in COLUMNS.values()}
    if all(value is None for value in shown.values()):
        return None
    started, ended = row.get("started_at"), row.get("ended_at")
    if shown["wall_seconds"] is None and started is not None and ended is not None:
        shown["wall_seconds"] = max(0.0, (ended - started).total_seconds())
    return shown
