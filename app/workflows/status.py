"""Each target's state, as ``gwf status`` shows it, from the jobs gantry ran.

gwf asks its backend (submitted, running) and otherwise its own
``should_run`` (shouldrun, completed). Here the backend's part is the latest
gantry job of the target: queued or submitted is ``submitted``; a job that
ended leaves the answer to ``should_run``, except that a failed or
cancelled last job is shown as such while the target still should run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gantry.workflows.load import LoadedWorkflow
from gantry.workflows.plan import gwf_scheduler, select, should_run

ACTIVE = {"queued": "submitted", "submitted": "submitted", "running": "running"}
ACTIVE["cancelling"] = "running"


@dataclass(frozen=True, slots=True)
class TargetState:
    name: str
    status: str  # shouldrun, submitted, running, completed, failed, cancelled
    job_id: int | None
    #: of the target and everything it depends on, how many are completed
    done: int
    total: int


def _status(
    scheduler: Any, loaded: LoadedWorkflow, target: Any, job: Mapping[str, Any] | None
) -> str:
    if job is not None and job["state"] in ACTIVE:
        return ACTIVE[job["state"]]
    if not should_run(scheduler, loaded, target):
        return "completed"
    if job is not None and job["state"] in ("failed", "cancelled"):
        return str(job["state"])
    return "shouldrun"


def target_states(
    loaded: LoadedWorkflow, latest: Mapping[str, Mapping[str, Any]], patterns: Sequence[str] = ()
) -> list[TargetState]:
    """One row per selected target; ``latest``: target name -> its newest job."""
    with gwf_scheduler(loaded) as scheduler:
        statuses = {
            name: _status(scheduler, loaded, target, latest.get(name))
            for name, target in loaded.graph.targets.items()
        }
    rows = []
    for target in select(loaded, patterns):
        upstream = loaded.graph.dfs(target)
        done = sum(1 for t in upstream if statuses[t.name] == "completed")
        job = latest.get(target.name)
        rows.append(
            TargetState(
                target.name, statuses[target.name], job["id"] if job else None, done, len(upstream)
            )
        )
    return rows
