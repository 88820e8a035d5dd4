"""From a job and its options to qsub's argv (the script goes on stdin).

The options are gwf's SGE options: ``cores`` become slots of a parallel
environment (``-pe smp N``, the environment named by the ``parallel_env``
option), ``memory`` is ``-l h_vmem`` (per slot, so divided by the cores),
``walltime`` is ``-l h_rt``, ``queue`` is ``-q``, ``account`` is ``-A``;
``sge_args`` are extra qsub arguments.
Every value is one argv item: no shell ever parses a user string.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gantry.backends.base import ArraySpec, JobSubmission
from gantry.backends.options import format_walltime, parse_cores, parse_memory, parse_walltime
from gantry.backends.scheduler.options import Check, normalise, one_word

OPTION_DEFAULTS: dict[str, Any] = {
    "cores": 1,
    "memory": None,
    "walltime": None,
    "queue": None,
    "account": None,
    "parallel_env": "smp",
    "sge_args": None,
}

#: qsub options the backend sets itself; sge_args may not override them.
RESERVED = frozenset(
    {"-N", "-o", "-e", "-j", "-wd", "-cwd", "-terse", "-hold_jid", "-sync", "-t", "-tc", "-V",
     "-v", "-S", "-b", "-now"}
)  # fmt: skip

#: The server's variables qsub needs to find the cell; nothing else reaches a job.
PASSED_ENV = frozenset({"SGE_ROOT", "SGE_CELL", "SGE_QMASTER_PORT", "SGE_EXECD_PORT"})


def _sge_args(key: str, value: object) -> str:
    args = shlex.split(value) if isinstance(value, str) else None
    if args is None:
        raise ValueError("sge_args must be a string of qsub arguments, e.g. '-l arch=lx-amd64'")
    clash = sorted(a for a in args if a in RESERVED)
    if clash:
        raise ValueError(f"sge_args may not set {', '.join(clash)}: gantry sets them itself")
    return shlex.join(args)


def _word(key: str, value: object) -> str:
    return one_word(key, value, dash=False)  # qsub takes "-q VALUE" as two argv items


CHECKS: dict[str, Check] = {
    "cores": lambda _, v: parse_cores(v),
    "memory": lambda _, v: f"{-(-parse_memory(v) // (1 << 20))}M",
    # HH:MM:SS, which parses back to the same (submit normalises again)
    "walltime": lambda _, v: format_walltime(parse_walltime(v)),
    "sge_args": _sge_args,
    "queue": _word,
    "account": _word,
    "parallel_env": _word,
}


def normalise_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise option values; ValueError names the option and the fix."""
    return normalise(options, CHECKS)


@dataclass(frozen=True, slots=True)
class TaskRange:
    """An array as SGE's ``-t first-last:step``; SGE task id = gantry's index + ``offset``."""

    first: int
    last: int
    step: int
    offset: int

    @property
    def text(self) -> str:
        return f"{self.first}-{self.last}:{self.step}"


def task_range(spec: ArraySpec) -> TaskRange:
    """SGE numbers tasks from 1 in one stepped range: an array from index 0 is
    shifted by one (the script maps the ids back); a list that is no single
    stepped range is refused, naming the backend."""
    if len(spec.ranges) == 1:
        first, last, step = spec.ranges[0]
        last = first + (last - first) // step * step
    else:
        indices = list(spec.indices())
        first, last = indices[0], indices[-1]
        step = indices[1] - first if len(indices) > 1 else 1
        if indices != list(range(first, last + 1, step)):
            raise ValueError(
                f"backend 'sge' cannot run array {spec.text!r}: SGE's qsub -t takes one"
                " range A-B:S; submit one array per range"
            )
    offset = 1 if first == 0 else 0
    return TaskRange(first + offset, last + offset, step, offset)


def own_shebang(spec: str, tasks: TaskRange | None) -> bool:
    """Whether ``spec`` runs as it is (its own non-bash ``#!``); ValueError if
    it is an array's script that must map SGE's task ids back and cannot."""
    if not (spec.startswith("#!") and "bash" not in spec.partition("\n")[0]):
        return False
    if tasks is not None and tasks.offset:
        raise ValueError(
            "backend 'sge': an array from index 0 needs a bash script (SGE numbers"
            " tasks from 1 and the script maps them back): drop the #! line or start at 1"
        )
    return True


def qsub_argv(
    job: JobSubmission,
    options: Mapping[str, Any],
    deps: Sequence[str],
    name: str,
    tasks: TaskRange | None = None,
) -> list[str]:
    """qsub's argv for one job (or array); the script is read from stdin."""
    out, err = str(job.stdout_path), str(job.stderr_path)
    if tasks is not None and tasks.offset:
        out = err = "/dev/null"  # the script itself writes <id>_<index> (see job_script)
    elif tasks is not None:  # SGE puts the task's id for $TASK_ID: <id>_<index>.stdout
        out, err = (str(p.with_name(f"{p.stem}_$TASK_ID{p.suffix}"))
                    for p in (job.stdout_path, job.stderr_path))  # fmt: skip
    argv = ["qsub", "-terse", "-N", name, "-S", "/bin/bash", "-V", "-j", "n",
            "-wd", str(job.working_dir), "-o", out, "-e", err]  # fmt: skip
    if tasks is not None:
        argv += ["-t", tasks.text]
        if job.array is not None and job.array.limit is not None:
            argv += ["-tc", str(job.array.limit)]
    cores = int(options.get("cores") or 1)
    if cores > 1:
        argv += ["-pe", str(options.get("parallel_env") or "smp"), str(cores)]
    if options.get("memory"):
        # h_vmem is per slot; gwf's memory is the job's: share it out.
        per_slot = -(-parse_memory(options["memory"]) // (cores << 20))
        argv += ["-l", f"h_vmem={per_slot}M"]
    if options.get("walltime"):
        argv += ["-l", f"h_rt={parse_walltime(options['walltime'])}"]  # seconds
    if options.get("queue"):
        argv += ["-q", str(options["queue"])]
    if options.get("account"):
        argv += ["-A", str(options["account"])]
    if options.get("sge_args"):
        argv += shlex.split(str(options["sge_args"]))
    if deps:
        argv += ["-hold_jid", ",".join(deps)]
    return argv


def qsub_environment(env: Mapping[str, str]) -> dict[str, str]:
    """qsub's environment, which ``-V`` hands to the job: the job's own plus the cell's."""
    bad = [n for n in env if not n or "=" in n or "\0" in n or n.startswith("SGE_")]
    if bad:
        raise ValueError(f"environment variable names {bad!r} are not valid for an SGE job")
    passed = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    return {**env, **passed}


#: The exit code of a job whose dependency did not complete (not 99 or 100: SGE
#: requeues or errors those).
SKIPPED_EXIT = 97


def job_script(
    spec: str,
    ends_dir: str,
    deps: Sequence[str],
    tasks: TaskRange | None = None,
    job: JobSubmission | None = None,
) -> str:
    """The script qsub reads: the spec, behind Slurm's ``afterok`` on its dependencies.

    SGE's ``-hold_jid`` releases a job when its dependencies end *in any way*;
    gantry's dependencies mean "completed". So every bash job records its exit
    code in ``ends_dir/<JOB_ID>`` (``<JOB_ID>.<task>`` for an array's task, and
    the backend writes how many tasks it has in ``<JOB_ID>.count``), in a
    folder next to the logs, which the exec hosts see; a dependent runs only
    if each of its dependencies recorded 0 (every task, for an array);
    otherwise it exits SKIPPED_EXIT at once, and the backend reports it
    cancelled. An array's task gets its index as ``GANTRY_ARRAY_INDEX``.
    A spec with its own non-bash shebang runs as it is (no guard, no index).
    """
    if own_shebang(spec, tasks):
        return spec
    body = spec.partition("\n")[2] if spec.startswith("#!") else spec
    ends = shlex.quote(ends_dir)
    me = '"$JOB_ID"' if tasks is None else '"$JOB_ID.$SGE_TASK_ID"'
    lines = ["#!/bin/bash"]
    if tasks is not None:
        lines.append(f"export GANTRY_ARRAY_INDEX=$((SGE_TASK_ID - {tasks.offset}))")
        if tasks.offset and job is not None:
            lines.append("exec >" + _task_log(job.stdout_path) + " 2>" + _task_log(job.stderr_path))
    if deps:
        lines.append(
            "gantry_ok() { if [ -f "
            + ends
            + '/"$1".count ]; then [ "$(grep -lsx 0 '
            + ends
            + '/"$1".[0-9]* | wc -l)" = "$(cat '
            + ends
            + '/"$1".count)" ]; else '
            '[ "$(cat ' + ends + '/"$1" 2>/dev/null)" = 0 ]; fi; }'
        )
    for dep in deps:
        lines.append(
            f"if ! gantry_ok {dep}; then "
            f"echo 'gantry: dependency (SGE job {dep}) did not complete; not running' >&2; "
            f"touch {ends}/{me}.skipped; exit {SKIPPED_EXIT}; fi"
        )
    lines.append(f"trap 'echo $? > {ends}/{me}' EXIT")
    return "\n".join(lines) + "\n" + body


def _task_log(path: Path) -> str:
    """``12.stdout`` -> ``12_"$GANTRY_ARRAY_INDEX".stdout``, quoted for bash."""
    head = shlex.quote(str(path.with_name(f"{path.stem}_")))
    return f'{head}"$GANTRY_ARRAY_INDEX"' + (shlex.quote(path.suffix) if path.suffix else "")
