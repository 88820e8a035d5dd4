"""From a request to jobs the engine can take: backend, options, paths, graph.

No HTTP here: problems are :class:`~gantry.jobs.errors.SubmissionError`\\ s
naming the offending field by its path within the submission (``("jobs", 2,
"backend")``), which the API turns into 422 answers. A job with a payload goes
to the backend that accepts payloads, which checks the payload itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from gantry.backends.base import Backend, InvalidPayload
from gantry.backends.registry import BackendEntry
from gantry.jobs.arrays import DEFAULT_MAX_TASKS, ArraySpecError, parse_array
from gantry.jobs.errors import FieldPath, SubmissionError
from gantry.jobs.graph import GraphError, Node, resolve
from gantry.jobs.store import NewJob

#: SQLite and PostgreSQL integers are 64-bit: larger job ids cannot exist.
MAX_JOB_ID = 2**63 - 1


class JobRequest(Protocol):
    """What a submitter asks for: the fields :func:`build_jobs` reads.

    The API's ``JobCreate`` has them; so can any plain object.
    """

    @property
    def name(self) -> str: ...
    @property
    def backend(self) -> str | None: ...
    @property
    def spec(self) -> str | None: ...
    @property
    def payload(self) -> object | None: ...
    @property
    def options(self) -> Mapping[str, Any]: ...
    @property
    def depends_on(self) -> Sequence[int | str]: ...
    @property
    def env(self) -> Mapping[str, str]: ...
    @property
    def working_dir(self) -> str | None: ...
    @property
    def inputs(self) -> Sequence[str]: ...
    @property
    def outputs(self) -> Sequence[str]: ...
    @property
    def tags(self) -> Sequence[str]: ...
    @property
    def priority(self) -> int: ...
    @property
    def max_retries(self) -> int: ...
    @property
    def retry_delay(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Catalog:
    """The backends a server has: running instances and what failed to load."""

    running: Mapping[str, Backend]
    installed: Mapping[str, BackendEntry]
    default: str
    #: the most tasks one array job may have
    max_array_tasks: int = DEFAULT_MAX_TASKS

    def backend(self, name: str | None, at: FieldPath) -> tuple[str, Backend]:
        name = name or self.default
        backend = self.running.get(name)
        if backend is not None:
            return name, backend
        entry = self.installed.get(name)
        if entry is not None and entry.error:
            raise SubmissionError(
                at,
                f"backend {name!r} failed to load ({entry.error}): fix "
                "its installation or choose another backend",
            )
        available = ", ".join(sorted(self.running)) or "none"
        raise SubmissionError(at, f"unknown backend {name!r}: choose one of {available}")

    def payload_backend(self) -> tuple[str, Backend] | None:
        """The running backend that takes jobs with a payload, if any."""
        return next(((n, b) for n, b in self.running.items() if b.accepts_payloads), None)


def prepare_options(
    name: str, backend: Backend, options: Mapping[str, Any], at: FieldPath
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
        raise SubmissionError((*at, "options"), str(exc)) from None


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
    depends_on: Sequence[int | str], at: FieldPath, *, batch: bool
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
            (*at, "depends_on"),
            f"depends_on names {names} only work within a batch: give job ids",
        )
    if ids and (ids[0] < 1 or ids[-1] > MAX_JOB_ID):
        raise SubmissionError(
            (*at, "depends_on"), f"job ids in depends_on lie between 1 and {MAX_JOB_ID}"
        )
    return ids, names


async def _payload_of(
    req: JobRequest, catalog: Catalog, at: FieldPath
) -> tuple[str, dict[str, Any]] | None:
    """None for a command job; for a job with a payload, its backend and the payload to store."""
    if req.payload is None:
        if req.spec is None:
            raise SubmissionError(
                (*at, "spec"),
                "Field required: give spec (the shell script of a command job) or payload "
                "(the sample and method of an instrument job)",
            )
        return None
    if req.spec is not None:
        raise SubmissionError(
            (*at, "payload"),
            "give spec (a command job) or payload (an instrument job), not both",
        )
    found = catalog.payload_backend()
    if found is None:
        raise SubmissionError(
            (*at, "payload"), "this server runs no instruments: no backend takes a payload"
        )
    name, backend = found
    if req.backend not in (None, name):
        raise SubmissionError(
            (*at, "backend"),
            f"a job with a payload (an instrument job) runs on the {name!r} backend, "
            f"not {req.backend!r}: leave backend out",
        )
    try:
        return name, await backend.validate_payload(req.payload)
    except InvalidPayload as exc:
        raise SubmissionError((*at, "payload", *exc.field), str(exc)) from None


def _checked_array(
    text: str, req: JobRequest, catalog: Catalog, backend: str, has_payload: bool, at: FieldPath
) -> str:
    """The array spec, normalised; SubmissionError quoting it and the rule it breaks."""
    where = (*at, "array")
    if has_payload:
        raise SubmissionError(where, "array is for command jobs: give spec, not payload")
    if not catalog.running[backend].supports_arrays:
        able = ", ".join(sorted(n for n, b in catalog.running.items() if b.supports_arrays))
        raise SubmissionError(
            where, f"backend {backend!r} cannot run arrays: submit it to one that can ({able})"
        )
    if req.max_retries:
        raise SubmissionError(where, "an array job cannot be retried: give max_retries 0")
    try:
        array = parse_array(text, catalog.max_array_tasks)
    except ArraySpecError as exc:
        raise SubmissionError(where, str(exc)) from None
    try:  # what this backend's scheduler can run (SGE: one stepped range)
        catalog.running[backend].validate_array(array, req.spec or "")
    except ValueError as exc:
        raise SubmissionError(where, str(exc)) from None
    return array.text


async def build_jobs(
    requests: Sequence[JobRequest],
    catalog: Catalog,
    default_dir: Path,
    *,
    batch: bool,
    submitted_by: str | None = None,
) -> list[NewJob]:
    """Validate requests and turn them into :class:`NewJob`\\ s (all or none).

    ``submitted_by``: the name of the API token that asked (kept with each job).
    """
    jobs: list[NewJob] = []
    nodes: list[Node] = []
    dirs: dict[str, int] = {}
    default_working_dir = str(default_dir)
    # Jobs of a batch mostly share backend and options: check each distinct pair once.
    checked: dict[tuple[str | None, str], tuple[str, dict[str, Any], list[str]]] = {}
    shared = _SharedValues()
    for i, req in enumerate(requests):
        at: FieldPath = ("jobs", i) if batch else ()
        # Command jobs (the common case) skip the payload checks entirely.
        is_command = req.payload is None and req.spec is not None
        with_payload = None if is_command else await _payload_of(req, catalog, at)
        chosen, payload = (req.backend, None) if with_payload is None else with_payload
        key = (chosen, _options_key(req.options))
        found = checked.get(key)
        if found is None:
            name, backend = catalog.backend(chosen, (*at, "backend"))
            found = checked[key] = (name, *prepare_options(name, backend, req.options, at))
        backend_name, options, warnings = found
        if req.working_dir:
            dirs.setdefault(os.path.normpath(req.working_dir), i)  # noqa: ASYNC240 (string only)
        after_ids, after_names = _split_depends_on(req.depends_on, at, batch=batch)
        array = getattr(req, "array", None)  # requests that predate arrays have none
        if array is not None:
            array = _checked_array(array, req, catalog, backend_name, payload is not None, at)
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
                array=array,
                submitted_by=submitted_by,
                after_ids=after_ids,
            )
        )
        if batch:
            working_dir = req.working_dir or default_working_dir
            nodes.append(Node(req.name, after_names, req.inputs, req.outputs, working_dir))
    missing = await anyio.to_thread.run_sync(_check_dirs, set(dirs)) if dirs else None
    if missing is not None:
        at = ("jobs", dirs[missing]) if batch else ()
        raise SubmissionError(
            (*at, "working_dir"),
            f"working_dir {missing} is not an existing directory: create it or give another",
        )
    if batch:
        try:
            edges = resolve(nodes)
        except GraphError as exc:
            raise SubmissionError(exc.loc, str(exc)) from None
        for job, after in zip(jobs, edges, strict=True):
            job.after_new.extend(after)  # NewJob is frozen; its list is its own
    return jobs
