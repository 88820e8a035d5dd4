"""From a request to jobs the engine can take: backend, options, paths, graph.

No HTTP here: problems are :class:`SubmissionError`\\ s with the location of
the offending field, which the API turns into 422 answers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio

from gantry.backends.base import Backend
from gantry.backends.registry import BackendEntry
from gantry.jobs.graph import GraphError, Node, resolve
from gantry.jobs.store import NewJob
from gantry.schemas import JobCreate

#: SQLite and PostgreSQL integers are 64-bit: larger job ids cannot exist.
MAX_JOB_ID = 2**63 - 1


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


T = TypeVar("T")


class _SharedValues:
    """One object per distinct list or mapping within a batch.

    The jobs of a batch mostly carry equal tags, inputs or env; sharing one
    object lets the writer encode each distinct value once (it converts by
    identity) and keeps one copy in memory. Values built here are never
    mutated afterwards.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, tuple[Any, ...]], Any] = {}

    def _one(self, kind: str, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        found: T | None = self._seen.get((kind, key))
        if found is None:
            found = self._seen[kind, key] = make()
        return found

    def tags(self, tags: Sequence[str]) -> list[str]:
        return self._one("tags", tuple(tags), lambda: sorted(set(tags)))

    def paths(self, paths: Sequence[str]) -> list[str]:
        return self._one("paths", tuple(paths), lambda: list(paths))

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        return self._one("env", tuple(env.items()), lambda: dict(env))


def _split_depends_on(
    depends_on: Sequence[int | str], loc: tuple[str | int, ...], *, batch: bool
) -> tuple[list[int], list[str]]:
    """``depends_on`` as sorted distinct job ids, and names of jobs of the batch."""
    if not depends_on:
        return [], []
    if len(depends_on) == 1:  # a chain: the common case, without the set and sort
        only = depends_on[0]
        ids, names = ([only], []) if isinstance(only, int) else ([], [only])
    else:
        ids = sorted({d for d in depends_on if isinstance(d, int)})
        names = [d for d in depends_on if isinstance(d, str)]
    if names and not batch:
        raise SubmissionError(
            (*loc, "depends_on"),
            f"depends_on names {names} only work within a batch: give job ids",
        )
    if ids and (ids[0] < 1 or ids[-1] > MAX_JOB_ID):
        raise SubmissionError(
            (*loc, "depends_on"), f"job ids in depends_on lie between 1 and {MAX_JOB_ID}"
        )
    return ids, names


async def build_jobs(
    requests: Sequence[JobCreate], catalog: Catalog, default_dir: Path, *, batch: bool
) -> list[NewJob]:
    """Validate requests and turn them into :class:`NewJob`\\ s (all or none)."""
    # Imported here: the instrument checks raise this module's SubmissionError.
    from gantry.instruments.validation import instrument_payload

    jobs: list[NewJob] = []
    nodes: list[Node] = []
    dirs: dict[str, int] = {}
    default_working_dir = str(default_dir)
    # Jobs of a batch mostly share backend and options: check each distinct pair once.
    checked: dict[tuple[str | None, str], tuple[str, dict[str, Any], list[str]]] = {}
    shared = _SharedValues()
    for i, req in enumerate(requests):
        loc: tuple[str | int, ...] = ("body", "jobs", i) if batch else ("body",)
        # Command jobs (the common case) skip the instrument checks entirely.
        is_command = req.payload is None and req.spec is not None
        payload = None if is_command else await instrument_payload(req, catalog, loc)
        chosen = "instrument" if payload is not None else req.backend
        key = (chosen, _options_key(req.options))
        found = checked.get(key)
        if found is None:
            name, backend = catalog.backend(chosen, (*loc, "backend"))
            found = checked[key] = (name, *prepare_options(name, backend, req.options, loc))
        backend_name, options, warnings = found
        if req.working_dir:
            dirs.setdefault(os.path.normpath(req.working_dir), i)  # noqa: ASYNC240 (string only)
        after_ids, after_names = _split_depends_on(req.depends_on, loc, batch=batch)
        jobs.append(
            NewJob(
                name=req.name,
                backend=backend_name,
                kind="command" if payload is None else "instrument",
                spec=req.spec,
                payload=payload,
                options=options,
                env=shared.env(req.env),
                working_dir=req.working_dir,
                inputs=shared.paths(req.inputs),
                outputs=shared.paths(req.outputs),
                tags=shared.tags(req.tags),
                warnings=warnings,
                priority=req.priority,
                max_retries=req.max_retries,
                retry_delay=req.retry_delay,
                after_ids=after_ids,
            )
        )
        if batch:
            working_dir = req.working_dir or default_working_dir
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
            job.after_new.extend(after)  # NewJob is frozen; its list is its own
    return jobs
