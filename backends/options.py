"""Parsing of gwf's resource options, shared by every backend.

gwf (and Slurm) write ``walltime`` as ``[D-]HH:MM:SS`` and ``memory`` as a
number with an optional unit (``4g``, ``512mb``; a bare number is megabytes,
as Slurm's ``--mem``). Errors are ``ValueError``s that say the accepted form.
"""

from __future__ import annotations

import re

MAX_WALLTIME_SECONDS = 365 * 86400
MAX_MEMORY_BYTES = 1 << 50  # 1 PiB: anything larger is a typo
MAX_CORES = 4096

_MEMORY = re.compile(r"^(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>[kmgt]?)(?:i?b)?$", re.IGNORECASE)
_UNIT = {"": 1 << 20, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}

WALLTIME_HELP = "use [D-]HH:MM:SS, e.g. '01:30:00' or '2-00:00:00' (a bare number is minutes)"
MEMORY_HELP = "use a number with a unit, e.g. '512m', '4g' (a bare number is megabytes)"


def parse_walltime(value: object) -> int:
    """Seconds in a walltime, in Slurm's formats; raises ValueError saying them.

    ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``;
    a bare number is minutes, as in Slurm.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"walltime {value!r} is not a duration: {WALLTIME_HELP}")
    text = str(value).strip()
    days_text, dash, clock = text.rpartition("-")
    parts = clock.split(":")
    bad_days = bool(dash) and not days_text.isdigit()
    if bad_days or len(parts) > 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"walltime {value!r} is malformed: {WALLTIME_HELP}")
    numbers = [int(p) for p in parts]
    if days_text:
        # D-HH, D-HH:MM, D-HH:MM:SS
        numbers += [0] * (3 - len(numbers))
        hours, minutes, seconds = numbers
        hours += int(days_text) * 24
    elif len(numbers) == 3:
        hours, minutes, seconds = numbers
    elif len(numbers) == 2:
        hours, (minutes, seconds) = 0, numbers
    else:
        hours, minutes, seconds = 0, numbers[0], 0
    if (len(parts) > 1 or days_text) and (minutes >= 60 or seconds >= 60):
        raise ValueError(f"walltime {value!r} has minutes or seconds >= 60: {WALLTIME_HELP}")
    total = (hours * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise ValueError(f"walltime {value!r} must be longer than zero: {WALLTIME_HELP}")
    if total > MAX_WALLTIME_SECONDS:
        raise ValueError(f"walltime {value!r} is longer than a year; ask for less")
    return total


def format_walltime(seconds: int) -> str:
    """Slurm's ``D-HH:MM:SS`` (or ``HH:MM:SS`` under a day)."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def parse_memory(value: object) -> int:
    """Bytes in a memory request; raises ValueError with the accepted format."""
    if isinstance(value, bool):
        raise ValueError(f"memory {value!r} is not a size: {MEMORY_HELP}")
    if isinstance(value, int):
        amount = value * _UNIT[""]
    else:
        match = _MEMORY.match(str(value).strip())
        if not match:
            raise ValueError(f"memory {value!r} is malformed: {MEMORY_HELP}")
        amount = int(float(match.group("num")) * _UNIT[match.group("unit").lower()])
    if amount <= 0:
        raise ValueError(f"memory {value!r} must be more than zero: {MEMORY_HELP}")
    if amount > MAX_MEMORY_BYTES:
        raise ValueError(f"memory {value!r} is more than 1 PiB; ask for less")
    return amount


def format_memory_mb(amount: int) -> str:
    """Memory for Slurm's ``--mem`` (megabytes, rounded up)."""
    return f"{-(-amount // (1 << 20))}M"


def parse_cores(value: object) -> int:
    """A positive whole number of cores, at most :data:`MAX_CORES`."""
    if isinstance(value, bool):
        raise ValueError(f"cores {value!r} is not a number: give a whole number like 1 or 4")
    try:
        cores = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ValueError(
            f"cores {value!r} is not a number: give a whole number like 1 or 4"
        ) from None
    if cores < 1 or cores > MAX_CORES:
        raise ValueError(f"cores {value!r} is out of range: give 1 to {MAX_CORES}")
    return cores
