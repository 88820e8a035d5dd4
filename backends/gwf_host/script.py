"""The script a gwf backend runs for a gantry job, and how it reports its end.

gwf's backends only say *submitted*, *running* or *unknown*: a target that
ended is unknown, whether it succeeded or not (gwf itself looks at output
files). So the job's script records its own exit status: an ``EXIT`` trap
writes it to ``<run dir>/exit`` (atomically, through a rename), whether the
script ends, calls ``exit`` or stops under Slurm's ``set -e``. Everything
else in the script is the job's spec, unchanged.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from pathlib import Path

EXIT_FILE = "exit"
SUBMITTED_FILE = "submitted"


def wrap(spec: str, run_dir: Path, env: Mapping[str, str]) -> str:
    exit_path = shlex.quote(str(run_dir / EXIT_FILE))
    temp_path = shlex.quote(str(run_dir / f"{EXIT_FILE}.tmp"))
    record = f'printf "%s\\n" "$?" > {temp_path} && mv -f {temp_path} {exit_path}'
    lines = [f"trap {shlex.quote(record)} EXIT"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in env.items()]
    lines.append(spec)
    return "\n".join(lines) + "\n"


def prepare(run_dir: Path) -> None:
    """A fresh run dir: no exit status of an earlier try, the time of submission."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / EXIT_FILE).unlink(missing_ok=True)
    (run_dir / SUBMITTED_FILE).write_text(f"{time.time()}\n")


def exit_code(run_dir: Path) -> int | None:
    """The job's exit status, or None while it has not ended (or left none)."""
    try:
        return int((run_dir / EXIT_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


def submitted_at(run_dir: Path) -> float | None:
    try:
        return float((run_dir / SUBMITTED_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
