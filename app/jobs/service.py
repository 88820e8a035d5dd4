"""From a request to jobs the engine can take: backend, options, paths, graph.

No HTTP here: problems are :class:`SubmissionError`\\ s with the location of
the offending field, which the API turns into 422 answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from app.jobs.graph import GraphError, Node, resolve
from app.jobs.store import NewJob
from app.schemas import JobCreate
from backends.base import Backend
from backends.registry import BackendEntry


class SubmissionError(ValueError):
    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


@dataclass(frozen=True, slots=True)
class Catalog:
    """The backends a server has: running instances and what failed to load."""

    running: Mapping[str, Backend]
    installed: Mapping[str, BackendEntry]
    default: str

    def backend(self, name: str | None, loc: tuple[str | int, ...]) -> tuple[str, Backend]:
        name = name or self.default
        backend = self.running.get(name)
        if backend is not None:
            return name, backend
        entry = self.installed.get(name)
        if entry is not None and entry.error:
            raise SubmissionError(
                loc,
                f"backend {name!r} failed to load ({entry.error}): fix "
                "its installation or choose another backend",
            )
        available = ", ".join(sorted(self.running)) or "none"
        raise SubmissionError(loc, f"unknown backend {name!r}: choose one of {available}")


def prepare_options(
    name: str, backend: Backend, options: Mapping[str, Any], loc: tuple[str | int, ...]
) -> tuple[dict[str, Any], list[str]]:
    """Defaults filled in, unknown options dropped (with a warning), values checked."""
    known = backend.option_defaults
    warnings = [
        f"option {key!r} is not supported by backend {name!r} and was dropped "
        f"(supported: {', '.join(sorted(known)) or 'none'})"
        for key in options
        if key not in known
    ]
    merged = {k: v for k, v in known.items() if v is not None}
    merged.update({k: v for k, v in options.items() if k in known})
    try:
        return backend.validate_options(merged), warnings
    except ValueError as exc:
        raise SubmissionError((*loc, "options"), str(exc)) from None


def _check_dirs(dirs: set[str]) -> str | None:
    for path in sorted(dirs):
        if not os.path.isdir(path):
            return path
    return None


def _options_key(options: Mapping[str, Any]) -> str:
    """A cheap identity for a set of options (most batches share one)."""
    if not options:
        return ""
    try:
        return repr(sorted(options.items()))
    except TypeError:  # values of mixed, unorderable types
        return json.dumps(options, sort_keys=True, default=repr)


async def build_jobs(
    requests: Sequence[JobCreate], catalog: Catalog, default_dir: Path, *, batch: bool
) -> list[NewJob]:
    """Validate requests and turn them into :class:`NewJob`\\ s (all or none)."""
    # Imported here: the instrument checks raise this module's SubmissionError.
    from app.instruments.validation import instrument_payload

    jobs: list[NewJob] = []
    nodes: list[Node] = []
    dirs: dict[str, int] = {}
    # Jobs of a batch mostly share their options: check each distinct set once.
    checked: dict[tuple[str, str], tuple[dict[str, Any], list[str]]] = {}
    for i, req in enumerate(requests):
        loc: tuple[str | int, ...] = ("body", "jobs", i) if batch else ("body",)
        # Command jobs (the common case) skip the instrument checks entirely.
        is_command = req.payload is None and req.spec is not None
        payload = None if is_command else await instrument_payload(req, catalog, loc)
        chosen = "instrument" if payload is not None else req.backend
        name, backend = catalog.backend(chosen, (*loc, "backend"))
        key = (name, _options_key(req.options))
        if key not in checked:
            checked[key] = prepare_options(name, backend, req.options, loc)
        options, warnings = dict(checked[key][0]), list(checked[key][1])
        working_dir = req.working_dir or str(default_dir)
        if req.working_dir:
            dirs.setdefault(os.path.normpath(req.working_dir), i)  # noqa: ASYNC240 (string only)
        after_ids = [d for d in req.depends_on if isinstance(d, int)]
        after_names = [d for d in req.depends_on if isinstance(d, str)]
        if after_names and not batch:
            raise SubmissionError(
                (*loc, "depends_on"),
                f"depends_on names {after_names} only work within a batch: give job ids",
            )
        if any(d <= 0 for d in after_ids):
            raise SubmissionError((*loc, "depends_on"), "job ids in depends_on are positive")
        jobs.append(
            NewJob(
                name=req.name,
                backend=name,
                kind="command" if payload is None else "instrument",
                spec=req.spec,
                payload=payload,
                options=options,
                env=dict(req.env),
                working_dir=req.working_dir,
                inputs=list(req.inputs),
                outputs=list(req.outputs),
                tags=sorted(set(req.tags)),
                warnings=warnings,
                priority=req.priority,
                max_retries=req.max_retries,
                retry_delay=req.retry_delay,
                after_ids=sorted(set(after_ids)),
            )
        )
        nodes.append(Node(req.name, after_names, req.inputs, req.outputs, working_dir))
    missing = await anyio.to_thread.run_sync(_check_dirs, set(dirs)) if dirs else None
    if missing is not None:
        i = dirs[missing]
        loc = ("body", "jobs", i, "working_dir") if batch else ("body", "working_dir")
        raise SubmissionError(
            loc, f"working_dir {missing} is not an existing directory: create it or give another"
        )
    if batch:
        try:
            edges = resolve(nodes)
        except GraphError as exc:
            raise SubmissionError(("body", *exc.loc), str(exc)) from None
        for job, after in zip(jobs, edges, strict=True):
            job.after_new = after
    return jobs
