"""What a job's run files say, for a server that is not watching it."""

from __future__ import annotations

from pathlib import Path

from gantry.backends.base import BackendStatus, StatusReport
from gantry.backends.local.process import find_supervisor, supervisor_started_at
from gantry.backends.local.rundir import RunFiles, RunState, final_report, is_key


def find_state(files: RunFiles) -> RunState | None:
    """What the job's supervisor recorded; None if no supervisor ever ran for it."""
    state = files.read_state()
    if state is None and files.launched():
        # Spawned, but the supervisor has not written its pid yet (or never will).
        pid = find_supervisor(files.base)
        if pid is not None:
            state = RunState(pid)
    return state


def status_on_disk(runs_dir: Path, refs: list[str]) -> dict[str, StatusReport]:
    """Status from the run files alone (runs in a worker thread)."""
    answer: dict[str, StatusReport] = {}
    for ref in refs:
        files = RunFiles(runs_dir, ref) if is_key(ref) else None
        state = find_state(files) if files is not None else None
        if files is None or state is None:
            answer[ref] = StatusReport(BackendStatus.UNKNOWN, raw="no such local job")
            continue
        if state.exit_code is None:
            started = supervisor_started_at(state.pid, files.base, state.written_at)
            if started is not None:
                answer[ref] = StatusReport(BackendStatus.RUNNING, started_at=started)
                continue
            state = files.read_state()
        answer[ref] = final_report(state, files.read_killed())
    return answer
