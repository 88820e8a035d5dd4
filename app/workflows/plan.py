"""What ``gwf run`` would submit, as one batch of gantry job requests.

gwf's rule, decided by gwf's own ``Scheduler.should_run`` (outputs missing or
older than inputs, sinks always, sources only when an output is missing): a
target runs if it should, or if one of its dependencies runs. A target whose
job is still active on the server counts as submitted, as gwf counts a target
its backend knows, and is not submitted twice. Targets that need not run are
left out; their dependents still wait for those that do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantry.workflows.load import LoadedWorkflow, WorkflowLoadError

TAG_PREFIX = "gwf:"


def workflow_tag(path: Path) -> str:
    """The tag every job of one workflow file carries (its jobs are found by it)."""
    return TAG_PREFIX + hashlib.sha256(str(path).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class WorkflowPlan:
    """The batch to submit (``jobs``: JobCreate-shaped dicts) and what was left out."""

    path: Path
    tag: str
    jobs: list[dict[str, Any]] = field(default_factory=list)
    up_to_date: list[str] = field(default_factory=list)
    already_active: list[str] = field(default_factory=list)


@contextmanager
def gwf_scheduler(loaded: LoadedWorkflow) -> Iterator[Any]:
    """gwf's Scheduler over the graph, for its ``should_run`` (no backend needed).

    gwf memoises ``should_run`` per (scheduler, target) in a module-wide
    dict; a long-lived server would keep every graph alive, so our entries
    are dropped afterwards.
    """
    from gwf.core import CachedFilesystem, Scheduler  # type: ignore[import-untyped]

    scheduler = Scheduler(graph=loaded.graph, backend=None, filesystem=CachedFilesystem())
    try:
        yield scheduler
    finally:
        memo = getattr(Scheduler.should_run, "_cache", {})
        for key in [k for k in memo if k and k[0] is scheduler]:
            del memo[key]


def should_run(scheduler: Any, loaded: LoadedWorkflow, target: Any) -> bool:
    from gwf.exceptions import GWFError  # type: ignore[import-untyped]

    try:
        return bool(scheduler.should_run(target))
    except GWFError as exc:  # an input nobody provides and that does not exist
        raise WorkflowLoadError(
            loaded.path,
            f"{exc.format_message()} Create the file, or add a target that outputs it.",
            target=target.name,
        ) from None


def select(loaded: LoadedWorkflow, patterns: Sequence[str]) -> list[Any]:
    """The targets named (gwf's glob patterns), in definition order; all if none."""
    targets = list(loaded.graph.targets.values())
    if not patterns:
        return sorted(targets, key=lambda t: t.order)
    from gwf.filtering import filter_names  # type: ignore[import-untyped]

    for pattern in patterns:
        if not any(True for _ in filter_names(targets, [pattern])):
            known = ", ".join(sorted(loaded.graph.targets)[:20]) or "none"
            raise WorkflowLoadError(
                loaded.path,
                f"no target matches {pattern!r}: choose among {known}",
                target=pattern,
            )
    return sorted(filter_names(targets, list(patterns)), key=lambda t: t.order)


def _request(
    target: Any, depends_on: list[int | str], tag: str, backend: str | None
) -> dict[str, Any]:
    options = {k: v for k, v in target.options.items() if v is not None}  # gwf drops None
    request: dict[str, Any] = {
        "name": target.name,
        "spec": target.spec if target.spec.strip() else "true",
        "options": options,
        "depends_on": depends_on,
        "working_dir": str(target.working_dir),
        "inputs": target.flattened_inputs(),
        "outputs": target.flattened_outputs(),
        "tags": [tag],
    }
    if backend:
        request["backend"] = backend
    return request


def plan_workflow(
    loaded: LoadedWorkflow,
    patterns: Sequence[str] = (),
    *,
    active: Mapping[str, int] | None = None,
    backend: str | None = None,
) -> WorkflowPlan:
    """The batch ``gwf run [patterns]`` would submit; ``active``: target name -> live job id."""
    active = active or {}
    tag = workflow_tag(loaded.path)
    plan = WorkflowPlan(loaded.path, tag)
    decided: dict[str, int | str | None] = {}  # name -> what dependents wait for, or None
    deps = loaded.graph.dependencies
    with gwf_scheduler(loaded) as scheduler:

        def visit(target: Any) -> int | str | None:
            if target.name in decided:
                return decided[target.name]
            if target.name in active:
                plan.already_active.append(target.name)
                decided[target.name] = active[target.name]
                return active[target.name]
            waits = [w for d in sorted(deps[target], key=lambda t: t.name) if (w := visit(d))]
            runs = bool(waits) or should_run(scheduler, loaded, target)
            if runs:
                plan.jobs.append(_request(target, waits, tag, backend))
            else:
                plan.up_to_date.append(target.name)
            decided[target.name] = target.name if runs else None
            return decided[target.name]

        for target in select(loaded, patterns):
            visit(target)
    return plan
