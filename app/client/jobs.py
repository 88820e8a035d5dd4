"""Job operations: submit, batch, list, wait, cancel, events, logs, tasks, stats."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from gantry.client.core import (
    Emit,
    Flow,
    Request,
    StreamFlow,
    call,
    collect,
    get,
    next_event,
    open_stream,
    operation,
    stream_operation,
)
from gantry.client.errors import StreamEnded, WaitTimeout
from gantry.client.waiting import TERMINAL, watch
from gantry.schemas import (
    BackendInfo,
    CancelResult,
    EventPublic,
    EventsPage,
    Health,
    JobBatchSubmitted,
    JobCreate,
    JobShown,
    JobsPage,
    JobStats,
    JobSubmitted,
    LogChunk,
    State,
    TaskCancelResult,
    TasksPage,
)

#: Resends of a submit whose answer was lost (the Idempotency-Key makes them safe).
SUBMIT_RETRIES = 2
EVENTS_PAGE = 1000
LogStream = Literal["stdout", "stderr"]
JobBody = JobCreate | Mapping[str, Any]


def job_body(
    job: BaseModel | Mapping[str, Any] | None, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON of a job: a :class:`JobCreate` (its set fields) or a mapping, plus ``fields``.

    A mapping is sent as given: the server checks it and names what is wrong.
    """
    if isinstance(job, BaseModel):
        base: dict[str, Any] = job.model_dump(mode="json", exclude_unset=True)
    else:
        base = dict(job or {})
    body: dict[str, Any] = to_jsonable_python({**base, **fields})
    return body


class JobOperations:
    """The job half of :class:`Client` and :class:`AsyncClient`."""

    @operation
    def health(self) -> Flow[Health]:
        """The server's ``/healthz``: version and how many jobs are active."""
        return (yield from call(Request("GET", "/healthz", root=True, retries=2), Health))

    @operation
    def submit(
        self, job: JobBody | None = None, /, *, idempotency_key: str | None = None, **fields: Any
    ) -> Flow[JobSubmitted]:
        """Submit one job: ``submit(spec="echo hi", name="greet", array="0-9")``, or a
        :class:`JobCreate`. Returns the stored job; ``warnings`` says what was dropped.

        A lost answer is resent with the same ``Idempotency-Key`` (made up if not
        given), so it never makes a twin job.
        """
        key = idempotency_key or uuid.uuid4().hex
        request = Request(
            "POST",
            "/jobs",
            json=job_body(job, fields),
            headers={"Idempotency-Key": key},
            retries=SUBMIT_RETRIES,
        )
        return (yield from call(request, JobSubmitted))

    @operation
    def batch(self, jobs: Iterable[JobBody]) -> Flow[JobBatchSubmitted]:
        """Submit many jobs in one transaction (all are stored, or none).

        Within a batch ``depends_on`` may name jobs of the batch.
        """
        body = {"jobs": [job_body(job, {}) for job in jobs]}
        return (yield from call(Request("POST", "/jobs/batch", json=body), JobBatchSubmitted))

    @operation
    def job(self, job_id: int) -> Flow[JobShown]:
        """One job: state, spec or payload, dependencies, accounting, array task counts."""
        return (yield from get(f"/jobs/{job_id}", JobShown))

    @operation
    def jobs(
        self,
        *,
        state: State | Iterable[State] | None = None,
        backend: str | None = None,
        name: str | None = None,
        tag: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Flow[JobsPage]:
        """A page of jobs, newest first; pass ``next_before`` as ``before`` for the next."""
        states = [state] if isinstance(state, str) else list(state) if state else None
        params = {"state": states, "backend": backend, "name": name, "tag": tag}
        return (yield from get("/jobs", JobsPage, {**params, "limit": limit, "before": before}))

    @operation
    def cancel(self, job_id: int) -> Flow[CancelResult]:
        """Cancel a job (idempotent while it runs; an ended job raises :class:`Conflict`)."""
        return (yield from call(Request("POST", f"/jobs/{job_id}/cancel"), CancelResult))

    @operation
    def tasks(self, job_id: int, *, after: int | None = None, limit: int = 100) -> Flow[TasksPage]:
        """A page of an array job's started tasks by index (``next_after`` pages on)."""
        params = {"after": after, "limit": limit}
        return (yield from get(f"/jobs/{job_id}/tasks", TasksPage, params))

    @operation
    def cancel_task(self, job_id: int, index: int) -> Flow[TaskCancelResult]:
        """Cancel one task of an array job; the others run on."""
        request = Request("POST", f"/jobs/{job_id}/tasks/{index}/cancel")
        return (yield from call(request, TaskCancelResult))

    @operation
    def stats(self, *, tag: str | None = None) -> Flow[JobStats]:
        """Jobs, CPU-hours, peak memory and wall hours, in total and by state."""
        return (yield from get("/stats", JobStats, {"tag": tag}))

    @operation
    def backends(self) -> Flow[list[BackendInfo]]:
        """The server's backends: running, healthy, option defaults."""
        return (yield from get("/backends", list[BackendInfo]))

    # --- events and waiting -------------------------------------------------------

    @stream_operation
    def iter_events(self, job_id: int | None = None, *, after: int = 0) -> StreamFlow[EventPublic]:
        """The events stored now (of one job, or all), oldest first, page by page."""
        path = "/events" if job_id is None else f"/jobs/{job_id}/events"
        while True:
            page = yield from get(path, EventsPage, {"after": after, "limit": EVENTS_PAGE})
            for row in page.items:
                yield Emit(row)
            if len(page.items) < EVENTS_PAGE:
                return
            after = page.items[-1].id

    @operation
    def events(self, job_id: int | None = None, *, after: int = 0) -> Flow[list[EventPublic]]:
        """Every state change stored now (of one job, or all jobs), oldest first."""
        return (yield from collect(JobOperations.iter_events.flow(self, job_id, after=after)))

    @stream_operation
    def follow_events(
        self, job_id: int | None = None, *, after: int = 0
    ) -> StreamFlow[EventPublic]:
        """State changes as they happen, backlog (after ``after``) first. One job's
        stream ends with its terminal event; the all-jobs stream never ends."""
        path = "/events" if job_id is None else f"/jobs/{job_id}/events"
        request = Request("GET", path, {"follow": True, "after": after}, read_timeout=None)
        stream = yield from open_stream(request)
        while (event := (yield from next_event(stream))) is not None:
            if event.event == "job":
                yield Emit(EventPublic.model_validate_json(event.data))

    @operation
    def wait(
        self,
        job_id: int,
        *,
        timeout: float | None = None,
        on_event: Callable[[EventPublic], None] | None = None,
    ) -> Flow[JobShown]:
        """Follow a job until it ends and return it; ``on_event`` sees each state change.

        :class:`WaitTimeout` after ``timeout`` seconds (the job goes on). A
        stream cut short (the server restarted) is picked up where it broke.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        state = "queued"

        def done(row: EventPublic) -> bool:
            nonlocal state
            state = row.to_state
            if on_event is not None:
                on_event(row)
            return state in TERMINAL

        if not (yield from watch(f"/jobs/{job_id}/events", 0, done, deadline)):
            raise WaitTimeout(f"job {job_id} did not end within {timeout} s", {job_id: state})
        return (yield from get(f"/jobs/{job_id}", JobShown))

    @operation
    def wait_all(
        self,
        job_ids: Iterable[int],
        *,
        timeout: float | None = None,
        on_event: Callable[[EventPublic], None] | None = None,
    ) -> Flow[dict[int, State]]:
        """Follow many jobs (a batch) until all ended: job id -> the state it ended in.

        One stream of all jobs' events, from the oldest job's creation on
        (events are stored in order, so none of theirs comes before it).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        states: dict[int, State] = dict.fromkeys(job_ids, "queued")
        ended: dict[int, State] = {}
        if not states:
            return ended
        first = yield from get(f"/jobs/{min(states)}/events", EventsPage, {"limit": 1})
        after = first.items[0].id - 1 if first.items else 0

        def done(row: EventPublic) -> bool:
            if row.job_id in states and row.job_id not in ended:
                states[row.job_id] = row.to_state
                if on_event is not None:
                    on_event(row)
                if row.to_state in TERMINAL:
                    ended[row.job_id] = row.to_state
            return len(ended) == len(states)

        if not (yield from watch("/events", after, done, deadline)):
            pending = {i: s for i, s in states.items() if i not in ended}
            raise WaitTimeout(f"{len(pending)} jobs did not end within {timeout} s", pending)
        return ended

    # --- logs --------------------------------------------------------------------

    @stream_operation
    def iter_logs(
        self, job_id: int, *, stream: LogStream = "stdout", attempt: int | None = None
    ) -> StreamFlow[str]:
        """A job's log as it is now, in pieces of up to 1 MiB."""
        offset = 0
        while True:
            params = {"stream": stream, "attempt": attempt, "offset": offset}
            chunk = yield from get(f"/jobs/{job_id}/logs", LogChunk, params)
            if chunk.text:
                yield Emit(chunk.text)
            offset = chunk.next_offset
            if chunk.complete or not chunk.text or offset >= chunk.size:
                return

    @operation
    def logs(
        self, job_id: int, *, stream: LogStream = "stdout", attempt: int | None = None
    ) -> Flow[str]:
        """A job's stdout (or stderr) as it is now; ``attempt``: an earlier attempt's."""
        flow = JobOperations.iter_logs.flow(self, job_id, stream=stream, attempt=attempt)
        return "".join((yield from collect(flow)))

    @stream_operation
    def follow_logs(
        self,
        job_id: int,
        *,
        stream: LogStream = "stdout",
        attempt: int | None = None,
        offset: int = 0,
    ) -> StreamFlow[str]:
        """A job's log from byte ``offset``, text as it is written, until the job ends.

        :class:`StreamEnded` if the stream stops first (follow again from the
        offset of what you got).
        """
        params = {"stream": stream, "attempt": attempt, "follow": True, "offset": offset}
        events = yield from open_stream(
            Request("GET", f"/jobs/{job_id}/logs", params, read_timeout=None)
        )
        while (event := (yield from next_event(events))) is not None:
            if event.event == "log":
                yield Emit(event.data)
            elif event.event == "end":
                return
        raise StreamEnded(f"the log stream ended before job {job_id} did: follow it again")
