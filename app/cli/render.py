"""Output: tables and JSON on stdout, messages and progress on stderr.

Consoles are made per call because tests swap ``sys.stdout``; rich drops
colours by itself when the stream is not a terminal.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gantry.client.models import JobPublic

STATE_STYLES = {
    "queued": "dim",
    "submitted": "blue",
    "running": "cyan",
    "cancelling": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}
REASON_WIDTH = 40
# Piped output is not wrapped at rich's default 80 columns: grep and awk read it.
PIPE_WIDTH = 200


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def out() -> Console:
    return _console(stderr=False)


def err() -> Console:
    return _console(stderr=True)


def error(message: str) -> None:
    err().print(Text("error: ", style="bold red") + Text(message))


def warn(message: str) -> None:
    err().print(Text(message, style="yellow"))


def note(message: str, style: str = "") -> None:
    err().print(Text(message, style=style))


def print_json(data: Any) -> None:
    """Plain JSON (no colours, no wrapping) so pipes and ``jq`` get it intact.

    ``data``: the client's models (as the API sends them) or plain values.
    """
    plain = to_jsonable_python(data)
    sys.stdout.write(json.dumps(plain, indent=2, ensure_ascii=False) + "\n")


def write_raw(text: str) -> None:
    """Log text exactly as it came: no markup, no wrapping."""
    sys.stdout.write(text)
    sys.stdout.flush()


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def utc(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; the server stores UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def local_time(value: datetime | None) -> str:
    moment = utc(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def human_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def duration(job: JobPublic, now: datetime | None = None) -> str:
    """Run time: start to end, or to now while it runs; ``-`` if never started."""
    started = utc(job.started_at)
    if started is None:
        return "-"
    ended = utc(job.ended_at) or now or datetime.now(UTC)
    return human_seconds(max(0.0, (ended - started).total_seconds()))


def shorten(text: str | None, width: int = REASON_WIDTH) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def jobs_table(jobs: Iterable[JobPublic]) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("id", "name", "backend", "state", "reason", "created", "duration"):
        table.add_column(column, justify="right" if column == "id" else "left", no_wrap=True)
    for job in jobs:
        table.add_row(
            str(job.id),
            job.name,
            job.backend,
            state_text(job.state),
            shorten(job.reason),
            local_time(job.created_at),
            duration(job),
        )
    return table


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def key_values(mapping: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in mapping.items()) or "-"
