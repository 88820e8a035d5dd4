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
from typing import Any

from gantry.backends.base import JobSubmission
from gantry.backends.options import format_walltime, parse_cores, parse_memory, parse_walltime

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
    {"-N", "-o", "-e", "-j", "-wd", "-cwd", "-terse", "-hold_jid", "-sync", "-t", "-V", "-v",
     "-S", "-b", "-now"}
)  # fmt: skip

#: The server's variables qsub needs to find the cell; nothing else reaches a job.
PASSED_ENV = frozenset({"SGE_ROOT", "SGE_CELL", "SGE_QMASTER_PORT", "SGE_EXECD_PORT"})


def _word(key: str, value: object) -> str:
    text = str(value).strip() if isinstance(value, str | int) else ""
    if not text or any(c.isspace() or not c.isprintable() for c in text) or text[0] == "-":
        raise ValueError(f"{key} {value!r} is not valid: give one word, e.g. {key}=all.q")
    return text


def _sge_args(value: object) -> str:
    args = shlex.split(value) if isinstance(value, str) else None
    if args is None:
        raise ValueError("sge_args must be a string of qsub arguments, e.g. '-l arch=lx-amd64'")
    clash = sorted(a for a in args if a in RESERVED)
    if clash:
        raise ValueError(f"sge_args may not set {', '.join(clash)}: gantry sets them itself")
    return shlex.join(args)


def normalise_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise option values; ValueError names the option and the fix."""
    out = dict(options)
    for key, value in options.items():
        if value is None:
            continue
        if key == "cores":
            out[key] = parse_cores(value)
        elif key == "memory":
            out[key] = f"{-(-parse_memory(value) // (1 << 20))}M"
        elif key == "walltime":
            # HH:MM:SS, which parses back to the same (submit normalises again)
            out[key] = format_walltime(parse_walltime(value))
        elif key == "sge_args":
            out[key] = _sge_args(value)
        elif key in ("queue", "account", "parallel_env"):
            out[key] = _word(key, value)
    return out


def qsub_argv(
    job: JobSubmission, options: Mapping[str, Any], deps: Sequence[str], name: str
) -> list[str]:
    """qsub's argv for one job; the script is read from stdin."""
    argv = ["qsub", "-terse", "-N", name, "-S", "/bin/bash", "-V", "-j", "n",
            "-wd", str(job.working_dir), "-o", str(job.stdout_path),
            "-e", str(job.stderr_path)]  # fmt: skip
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


def job_script(spec: str, ends_dir: str, deps: Sequence[str]) -> str:
    """The script qsub reads: the spec, behind Slurm's ``afterok`` on its dependencies.

    SGE's ``-hold_jid`` releases a job when its dependencies end *in any way*;
    gantry's dependencies mean "completed". So every bash job records its exit
    code in ``ends_dir/<JOB_ID>`` (a folder next to the logs, which the exec
    hosts see), and a dependent runs only if each of its dependencies recorded
    0; otherwise it exits SKIPPED_EXIT at once, and the backend reports it
    cancelled. A spec with its own non-bash shebang runs as it is (no guard).
    """
    if spec.startswith("#!") and "bash" not in spec.partition("\n")[0]:
        return spec
    body = spec.partition("\n")[2] if spec.startswith("#!") else spec
    quoted = shlex.quote(ends_dir)
    lines = ["#!/bin/bash"]
    for dep in deps:
        lines.append(
            f'if [ "$(cat {quoted}/{dep} 2>/dev/null)" != 0 ]; then '
            f"echo 'gantry: dependency (SGE job {dep}) did not complete; not running' >&2; "
            f'touch {quoted}/"$JOB_ID".skipped; exit {SKIPPED_EXIT}; fi'
        )
    lines.append(f"trap 'echo $? > {quoted}/\"$JOB_ID\"' EXIT")
    return "\n".join(lines) + "\n" + body
