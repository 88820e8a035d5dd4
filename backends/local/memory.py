"""Memory limits of running jobs: their processes' resident memory, watched.

A job's ``memory`` is enforced by the server, not by the kernel:

- not ``RLIMIT_AS``: it caps each process's address space, not what the job
  holds (a Python or JVM process reserves far more than it touches), and a
  job of many processes would get the limit once per process;
- not a cgroup: a memory cgroup of our own needs a delegated cgroup v2 tree,
  which a server started by hand, in a container or under cgroup v1 (this
  machine) does not have.

So one scan of ``/proc`` every :data:`POLL_SECONDS` adds up the resident
memory of every process by session: each job is a session of its own, led
by its supervisor, so a job's count is its whole process tree, grandchildren
included. A job over its limit is stopped like a walltime kill (TERM, then
KILL), with a reason naming the limit and what was seen. Pages shared
between a job's processes count once per process, as Slurm's
``jobacct_gather/linux`` counts them; a process that starts a session of its
own (``setsid``) leaves the job's count. A spike shorter than the interval
can go unseen: the limit bounds what a job holds, not each allocation.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable, Collection, Iterable

import anyio

from gantry.backends.local.run import Run
from gantry.backends.local.rundir import KillRecord

POLL_SECONDS = 0.25


def rss_by_session(sessions: Collection[int]) -> dict[int, int]:
    """Resident bytes of all processes of each of ``sessions``, from one scan of /proc."""
    totals = dict.fromkeys(sessions, 0)
    page = resource.getpagesize()
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as file:
                    text = file.read()
            except OSError:  # gone meanwhile
                continue
            # After comm (which may hold spaces): state ppid pgrp session ... rss (24th).
            fields = text[text.rindex(b")") + 2 :].split()
            session = int(fields[3])
            if session in totals:
                totals[session] += int(fields[21]) * page
    return totals


async def watch_memory(running: Callable[[], Iterable[Run]]) -> None:
    """Stop every job of ``running()`` whose processes hold more than its limit; forever."""
    while True:
        await anyio.sleep(POLL_SECONDS)
        limited = [r for r in running() if r.request.memory and r.kill is None and r.pid]
        if not limited:
            continue
        totals = await anyio.to_thread.run_sync(rss_by_session, [run.pid for run in limited])
        for run in limited:
            held = totals.get(run.pid, 0)
            run.peak_rss = max(run.peak_rss, held)
            if held > run.request.memory:
                run.request_kill(KillRecord("memory", memory=run.request.memory, seen=held))
