"""docs/client.md, the blocking client: submit, wait, logs, a batch, an array, errors.

tests/integration/test_client.py runs ``main`` against a real server.
"""

from __future__ import annotations

from typing import Any

from gantry.client import Client, Conflict, InvalidRequest, NotFound


def main(url: str, token: str | None = None) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    with Client(url, token=token) as gantry:
        # One job: submit, wait for its end, read its log.
        job = gantry.submit(spec="echo hello from $GANTRY_JOB_NAME", name="greet", tags=["docs"])
        ended = gantry.wait(job.id, timeout=120)
        print(ended.state, ended.exit_code)  # completed 0
        print(gantry.logs(job.id), end="")  # hello from greet
        seen["greet"] = (ended.state, gantry.logs(job.id))

        # A batch: all stored or none; names of the batch work in depends_on.
        batch = gantry.batch(
            [
                {"name": "make", "spec": "echo 1 2 3"},
                {"name": "check", "spec": "echo checked", "depends_on": ["make"]},
            ]
        )
        states = gantry.wait_all([ref.id for ref in batch.jobs], timeout=120)
        print(states)  # {12: 'completed', 13: 'completed'}
        seen["batch"] = states

        # An array job: one task per index, each sees GANTRY_ARRAY_INDEX.
        array = gantry.submit(spec="echo task $GANTRY_ARRAY_INDEX", array="0-3")
        shown = gantry.wait(array.id, timeout=120)
        assert shown.tasks is not None
        print(shown.tasks.by_state)  # {'pending': 0, 'completed': 4}
        seen["array"] = [task.index for task in gantry.tasks(array.id).items]

        # Errors carry the server's words; a 422 names each field.
        try:
            gantry.submit(spec="true", name="2fast")
        except InvalidRequest as exc:
            for error in exc.errors:
                print(f"{error.field}: {error.message}")
            seen["invalid"] = exc.errors
        try:
            gantry.job(10**9)
        except NotFound as exc:
            print(exc)  # job 1000000000 does not exist
            seen["missing"] = exc.message
        try:
            gantry.cancel(job.id)
        except Conflict as exc:
            print(exc.state, "-", exc)  # completed - job 1 already ended: it is completed
            seen["ended"] = exc.state
    return seen
