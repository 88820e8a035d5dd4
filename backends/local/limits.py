"""What the local backend may use (its config) and what each job asks for (its options)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantry.backends.base import BackendError
from gantry.backends.options import (
    format_memory_mb,
    format_walltime,
    parse_cores,
    parse_memory,
    parse_walltime,
)

OPTION_DEFAULTS: dict[str, Any] = {"cores": 1, "memory": None, "walltime": None}
DEFAULT_KILL_GRACE = 5.0


def _fix(key: str, value: object) -> str:
    return f"gantry config set backend.local.{key} {value}"


@dataclass(frozen=True, slots=True)
class Request:
    """The resources one job asks for; memory 0 means it did not say."""

    cores: int
    memory: int
    walltime: int | None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Request:
        """Parse (already validated) options; raises ValueError on a bad value."""
        cores = options.get("cores")
        memory = options.get("memory")
        walltime = options.get("walltime")
        return cls(
            cores=1 if cores is None else parse_cores(cores),
            memory=0 if memory is None else parse_memory(memory),
            walltime=None if walltime is None else parse_walltime(walltime),
        )


@dataclass(frozen=True, slots=True)
class Limits:
    """The machine share the backend hands out, from ``backend.local.*`` config."""

    max_cores: int
    max_memory: int
    kill_grace: float

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> Limits:
        """Read the config; a bad value raises BackendError naming the key and a fix."""
        cores_text, memory_text = config.get("max_cores"), config.get("max_memory")
        try:
            cores = default_cores() if cores_text is None else parse_cores(cores_text)
        except ValueError as exc:
            raise BackendError(f"backend.local.max_cores: {exc}; {_fix('max_cores', 4)}") from None
        try:
            memory = total_memory() if memory_text is None else parse_memory(memory_text)
        except ValueError as exc:
            raise BackendError(
                f"backend.local.max_memory: {exc}; {_fix('max_memory', '8g')}"
            ) from None
        raw = config.get("kill_grace")
        try:
            grace = DEFAULT_KILL_GRACE if raw is None else float(raw)
        except ValueError:
            grace = -1.0
        if not 0 <= grace <= 3600:
            raise BackendError(
                f"backend.local.kill_grace {raw!r} is not a number of seconds from 0 to 3600; "
                f"e.g. {_fix('kill_grace', 5)}"
            )
        return cls(max_cores=cores, max_memory=memory, kill_grace=grace)

    def check(self, request: Request) -> None:
        """Raise ValueError if the job could never run here, whatever else runs."""
        if request.cores > self.max_cores:
            raise ValueError(
                f"cores {request.cores} is more than this machine's limit of {self.max_cores} "
                f"(backend.local.max_cores): ask for fewer, or raise the limit with "
                f"{_fix('max_cores', request.cores)}"
            )
        if request.memory > self.max_memory:
            raise ValueError(
                f"memory {format_memory_mb(request.memory)} is more than this machine's limit "
                f"of {format_memory_mb(self.max_memory)} (backend.local.max_memory): ask for less, "
                f"or raise the limit with {_fix('max_memory', format_memory_mb(request.memory))}"
            )

    def normalise(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Options in canonical form (which parse back to the same values), checked."""
        request = Request.from_options(options)
        self.check(request)
        out = dict(options)
        out["cores"] = request.cores
        if request.memory:
            out["memory"] = format_memory_mb(request.memory)
        if request.walltime is not None:
            out["walltime"] = format_walltime(request.walltime)
        return out


def default_cores() -> int:
    # The CPUs this process may run on (taskset, cpusets), not all the host has.
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def total_memory(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Total RAM in bytes, from /proc/meminfo (sysconf where there is none)."""
    try:
        with meminfo.open() as lines:
            for line in lines:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
