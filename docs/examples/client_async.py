"""docs/client.md, the asyncio client: many jobs at once, a log followed live, events.

tests/integration/test_client.py runs ``main`` against a real server.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import anyio

from gantry.client import AsyncClient


async def main(url: str, token: str | None = None) -> dict[str, Any]:
    async with AsyncClient(url, token=token) as gantry:
        # Submit ten jobs concurrently and wait for all of them.
        jobs = []

        async def submit(n: int) -> None:
            jobs.append(await gantry.submit(spec=f"echo job {n}", name=f"job_{n}"))

        async with anyio.create_task_group() as tg:
            for n in range(10):
                tg.start_soon(submit, n)
        ended = await gantry.wait_all([job.id for job in jobs], timeout=120)

        # Follow a log as it is written: the stream ends when the job does.
        slow = await gantry.submit(spec="for i in 1 2 3; do echo line $i; sleep 0.2; done")
        lines = []
        async with aclosing(gantry.follow_logs(slow.id)) as stream:
            async for text in stream:
                print(text, end="")
                lines.append(text)

        # A job's state changes, backlog first; the stream ends at its last.
        states = [event.to_state async for event in gantry.follow_events(slow.id)]
        print(" -> ".join(states))  # queued -> submitted -> running -> completed
    return {"ended": ended, "log": "".join(lines), "states": states}
