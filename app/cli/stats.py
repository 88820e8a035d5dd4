"""``gantry stats``: what jobs cost; and how ``show`` words one job's accounting."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from gantry.cli import render
from gantry.cli.errors import guarded
from gantry.cli.runtime import Runtime
from gantry.client.models import JobAccounting, StateStats

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(amount: int | None) -> str:
    if amount is None:
        return "-"
    value = float(amount)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def accounting_text(accounting: JobAccounting | None) -> str:
    """One line for ``gantry show``: CPU user + system, peak memory, wall time."""
    if not accounting:
        return "-"
    parts: list[str] = []
    user, system = accounting.cpu_user_seconds, accounting.cpu_system_seconds
    if user is not None or system is not None:
        parts.append(f"cpu {user or 0:.2f}s user + {system or 0:.2f}s sys")
    if accounting.max_rss_bytes is not None:
        parts.append(f"peak memory {human_bytes(accounting.max_rss_bytes)}")
    if accounting.wall_seconds is not None:
        parts.append(f"wall {render.human_seconds(accounting.wall_seconds)}")
    if accounting.driver_seconds is not None:
        parts.append(f"driver {render.human_seconds(accounting.driver_seconds)}")
    if accounting.samples is not None:
        parts.append(f"{accounting.samples} samples")
    return ", ".join(parts) or "-"


@guarded
def stats(
    ctx: typer.Context,
    tag: Annotated[str | None, typer.Option("--tag", "-t", help="Only jobs with this tag.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """What jobs cost: count, CPU-hours, peak memory and wall hours, by state."""
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        answer = api.stats(tag=tag)
    if as_json:
        render.print_json(answer)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("state", "jobs", "measured", "cpu-hours", "peak memory", "wall-hours"):
        table.add_column(column, justify="left" if column == "state" else "right")
    rows: list[tuple[str, StateStats]] = sorted(answer.by_state.items())
    for label, entry in [*rows, ("total", answer)]:
        table.add_row(
            render.state_text(label) if label != "total" else "total",
            str(entry.jobs),
            str(entry.measured),
            f"{entry.cpu_hours:.4f}",
            human_bytes(entry.peak_memory_bytes),
            f"{entry.wall_hours:.4f}",
        )
    render.out().print(table)
