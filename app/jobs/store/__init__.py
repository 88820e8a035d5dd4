"""Storage of jobs: the engine's port, the SQL behind it, and an in-memory twin.

``write`` (new jobs, state changes), ``sqlite`` (the bulk-insert fast path)
and ``read`` (pages, states, reconciliation) hold the SQL; ``sql`` and
``memory`` implement the :class:`~gantry.jobs.store.ports.JobStore` port.
The names other code uses are re-exported here.
"""

from gantry.jobs.spec import NewJob
from gantry.jobs.store.read import (
    JobFilter,
    count_by_state,
    get_dependencies,
    get_job,
    get_job_detail,
    job_states,
    list_events,
    list_jobs,
    list_tasks,
    load_active,
)
from gantry.jobs.store.records import (
    ActiveRows,
    Created,
    IdempotencyConflict,
    Transition,
    UnknownDependencies,
    new_job_row,
)
from gantry.jobs.store.sqlite import bulk_insert
from gantry.jobs.store.stats import job_stats
from gantry.jobs.store.write import apply_transitions, insert_job_groups, insert_jobs

__all__ = [
    "ActiveRows",
    "Created",
    "IdempotencyConflict",
    "JobFilter",
    "NewJob",
    "Transition",
    "UnknownDependencies",
    "apply_transitions",
    "bulk_insert",
    "count_by_state",
    "get_dependencies",
    "get_job",
    "get_job_detail",
    "insert_job_groups",
    "insert_jobs",
    "job_states",
    "job_stats",
    "list_events",
    "list_jobs",
    "list_tasks",
    "load_active",
    "new_job_row",
]
