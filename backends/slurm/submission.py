"""From a job and its options to sbatch's argv and batch script.

The options are gwf's Slurm options. Every value becomes exactly one argv
item (``--partition=<queue>``); the job's spec goes to sbatch on stdin, its
environment is sbatch's own environment: no shell ever parses a user string.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gantry.backends.base import JobSubmission
from gantry.backends.options import (
    format_memory_mb,
    format_walltime,
    parse_cores,
    parse_memory,
    parse_walltime,
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Every option the backend knows; None = supported without a default.
OPTION_DEFAULTS: dict[str, Any] = {
    "cores": 1,
    "memory": None,
    "walltime": None,
    "nodes": None,
    "queue": None,
    "account": None,
    "constraint": None,
    "qos": None,
    "mail_type": None,
    "mail_user": None,
    "gres": None,
    "slurm_args": None,
}

#: Options that are one word handed to sbatch as they are, and their flags.
WORD_OPTIONS = {
    "queue": "--partition",
    "account": "--account",
    "constraint": "--constraint",
    "qos": "--qos",
    "mail_user": "--mail-user",
    "gres": "--gres",
}

MAIL_TYPES = _words(
    "NONE BEGIN END FAIL REQUEUE ALL INVALID_DEPEND STAGE_OUT TIME_LIMIT "
    "TIME_LIMIT_90 TIME_LIMIT_80 TIME_LIMIT_50 ARRAY_TASKS"
)
MAX_NODES = 100_000

# sbatch options the backend sets itself (names, logs, environment, ids):
# slurm_args may not override them.
RESERVED_LONG = (
    "array", "chdir", "clusters", "dependency", "error", "export", "export-file",
    "job-name", "output", "parsable", "test-only", "wait", "wrap",
)  # fmt: skip
RESERVED_SHORT = frozenset("aDdeJMoW")
# Of those, the ones a command-line option does not override when they come
# from the spec's #SBATCH lines.
UNTRACKABLE_LONG = ("array", "clusters", "wait", "test-only", "wrap")
UNTRACKABLE_SHORT = frozenset("aMW")
# Options whose value may be the next argv item ("-p debug", "--partition debug").
VALUED_SHORT = frozenset("aAbBcCdDeFGiJLmMnNopqStwx")
VALUED_LONG = _words(
    "account begin bb bbf chdir cluster-constraint comment constraint core-spec "
    "cores-per-socket cpu-freq cpus-per-gpu cpus-per-task deadline delay-boot distribution "
    "exclude extra-node-info gid gpu-bind gpu-freq gpus gpus-per-node gpus-per-socket "
    "gpus-per-task gres gres-flags input licenses mail-type mail-user mcs-label mem "
    "mem-per-cpu mem-per-gpu mincpus nodefile nodelist nodes ntasks ntasks-per-core "
    "ntasks-per-node ntasks-per-socket partition power priority profile qos reservation "
    "signal sockets-per-node switches thread-spec threads-per-core time time-min tmp uid "
    "wckey"
)


def normalise_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check and normalise option values; ValueError names the option and the fix."""
    out = dict(options)
    for key, value in options.items():
        if value is None:
            continue
        if key == "cores":
            out[key] = parse_cores(value)
        elif key == "memory":
            out[key] = format_memory_mb(parse_memory(value))
        elif key == "walltime":
            out[key] = format_walltime(parse_walltime(value))
        elif key == "nodes":
            out[key] = _nodes(value)
        elif key == "mail_type":
            out[key] = _mail_type(value)
        elif key == "slurm_args":
            out[key] = _slurm_args(value)
        elif key in WORD_OPTIONS:
            out[key] = _word(key, value)
    return out


def _nodes(value: object) -> int:
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= MAX_NODES:
        raise ValueError(f"nodes {value!r} is not a node count: give a whole number like 1 or 2")
    return int(text)


def _word(key: str, value: object) -> str:
    text = str(value).strip() if isinstance(value, str | int) else ""
    if not text or any(c.isspace() or not c.isprintable() for c in text):
        raise ValueError(
            f"{key} {value!r} is not valid: give one word without spaces, e.g. {key}=name"
        )
    return text


def _mail_type(value: object) -> str:
    items = [v.strip().upper() for v in str(value).split(",")] if isinstance(value, str) else []
    bad = [v for v in items if v not in MAIL_TYPES]
    if not items or bad:
        raise ValueError(
            f"mail_type {value!r} is not valid: use a comma-separated list of "
            f"{', '.join(sorted(MAIL_TYPES))}"
        )
    return ",".join(items)


def _slurm_args(value: object) -> str:
    """Extra sbatch arguments: a string (or list) of options, none the backend owns."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        args = list(value)
    elif isinstance(value, str):
        try:
            args = shlex.split(value)
        except ValueError as exc:
            raise ValueError(
                f"slurm_args {value!r} cannot be split ({exc}): check quotes"
            ) from None
    else:
        raise ValueError(f"slurm_args {value!r} must be a string like '--exclusive --nice=10'")
    check_slurm_args(args)
    return shlex.join(args)


def check_slurm_args(args: Sequence[str]) -> None:
    """Refuse positional arguments (sbatch would take one as the script) and reserved options."""
    for option in _options(args):
        if not option.startswith("-"):
            raise ValueError(
                f"slurm_args: {option!r} is not an option (sbatch would take it as the"
                " script); write options as --name=value"
            )
        owned = _reserved(option, RESERVED_LONG, RESERVED_SHORT)
        if owned:
            raise ValueError(
                f"slurm_args may not set {owned}: gantry sets it itself"
                " (use the job's options, dependencies and env instead)"
            )


def check_directives(spec: str) -> None:
    """Refuse ``#SBATCH`` lines that would break tracking (arrays, other clusters).

    The spec's other directives apply, below the options gantry passes.
    """
    lines = spec.splitlines()
    for line in lines[1:] if lines and lines[0].startswith("#!") else lines:
        text = line.strip()
        if text and not text.startswith("#"):
            return  # sbatch reads directives only up to the first command
        if not text.startswith("#SBATCH"):
            continue
        try:
            args = shlex.split(text[len("#SBATCH") :], comments=True)
        except ValueError as exc:
            raise ValueError(f"the spec's {text!r} cannot be split: {exc}") from None
        for option in _options(args):
            owned = _reserved(option, UNTRACKABLE_LONG, UNTRACKABLE_SHORT)
            if owned:
                raise ValueError(
                    f"the spec's '#SBATCH {owned}' is not supported: gantry tracks one job"
                    " per submission, on this cluster"
                )


def _options(args: Sequence[str]) -> Iterator[str]:
    """Each option in sbatch args ("--name" or "-x"), skipping values; positionals as they are."""
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg.startswith("--") and len(arg) > 2:
            name, eq, _ = arg[2:].partition("=")
            yield f"--{name}"
            if not eq and name in VALUED_LONG:
                i += 1  # "--partition debug": the value is the next item
        elif arg.startswith("-") and len(arg) > 1:
            for pos, flag in enumerate(arg[1:], start=2):
                yield f"-{flag}"
                if flag in VALUED_SHORT:
                    if pos == len(arg):
                        i += 1  # "-p debug"
                    break
        else:
            yield arg


def _reserved(option: str, long: Sequence[str], short: frozenset[str]) -> str | None:
    """The reserved option this one is (sbatch takes unambiguous prefixes: --job=x)."""
    if option.startswith("--"):
        owned = [r for r in long if r.startswith(option[2:])]
        return f"--{owned[0]}" if owned else None
    return option if option.startswith("-") and option[1:] in short else None


def sbatch_argv(
    job: JobSubmission,
    options: Mapping[str, Any],
    dependencies: Sequence[str],
    job_name: str,
) -> list[str]:
    """sbatch's argv; the script itself goes on stdin."""
    argv = ["sbatch", "--parsable", f"--job-name={job_name}"]
    out, err = _log_path(job.stdout_path), _log_path(job.stderr_path)
    if job.array is not None:
        # One log per task: sbatch puts the task's index for %a (<id>_<index>.stdout).
        out, err = _per_task(out), _per_task(err)
        argv.append(f"--array={job.array.text}")
    argv += [f"--output={out}", f"--error={err}"]
    argv += [f"--chdir={job.working_dir}", "--export=ALL"]  # all of sbatch_environment()
    if options.get("cores") is not None:
        argv.append(f"--cpus-per-task={options['cores']}")
    if options.get("memory") is not None:
        argv.append(f"--mem={options['memory']}")
    if options.get("walltime") is not None:
        argv.append(f"--time={options['walltime']}")
    if options.get("nodes") is not None:
        argv.append(f"--nodes={options['nodes']}")
    if options.get("mail_type") is not None:
        argv.append(f"--mail-type={options['mail_type']}")
    for key, flag in WORD_OPTIONS.items():
        if options.get(key) is not None:
            argv.append(f"{flag}={options[key]}")
    if dependencies:
        argv.append("--dependency=afterok:" + ":".join(dependencies))
    if options.get("slurm_args"):
        argv += shlex.split(options["slurm_args"])
    return argv


def _per_task(log: str) -> str:
    """``12.stdout`` -> ``12_%a.stdout``: where task_log_path puts each task's log."""
    path = Path(log)
    return str(path.with_name(f"{path.stem}_%a{path.suffix}"))


def _log_path(path: Path) -> str:
    text = str(path)
    if "%" in text or "\\" in text:
        # sbatch expands %j, %u, ... in these paths and treats "\" specially.
        raise ValueError(f"log path {text!r} contains '%' or '\\', which sbatch would rewrite")
    return text


def batch_script(spec: str, array: bool = False) -> str:
    """The job's spec as sbatch reads it: with a ``#!/bin/bash`` line if it has no shebang.

    An array's task also gets its index as ``GANTRY_ARRAY_INDEX`` (a script with
    a shebang of its own has Slurm's ``SLURM_ARRAY_TASK_ID`` only).
    """
    if spec.startswith("#!"):
        return spec
    index = 'export GANTRY_ARRAY_INDEX="$SLURM_ARRAY_TASK_ID"\n' if array else ""
    return "#!/bin/bash\n" + index + spec


#: Server variables sbatch needs; nothing else of the server's reaches a job.
PASSED_ENV = frozenset({"SLURM_CONF", "SLURM_CLUSTERS"})


def passed_env() -> dict[str, str]:
    """The server's variables that tell sbatch where the cluster is."""
    return {k: v for k, v in os.environ.items() if k in PASSED_ENV}


def sbatch_environment(env: Mapping[str, str], passed: Mapping[str, str]) -> dict[str, str]:
    """The environment sbatch runs in, which ``--export=ALL`` hands to the job.

    That is the job's own environment (and none of the server's) without the
    cost of ``--export=NONE``, which makes slurmd load the user's login
    environment (``su -``) for every job. ``passed`` are the server's
    variables sbatch itself needs (``SLURM_CONF``).
    """
    bad = [name for name in env if not name or "=" in name or "\0" in name]
    if bad:
        raise ValueError(f"environment variable names {bad!r} are not valid")
    if any("\0" in value for value in env.values()):
        raise ValueError("environment variable values may not contain NUL characters")
    steering = sorted(name for name in env if name.upper().startswith("SBATCH_"))
    if steering:
        raise ValueError(
            f"environment variables {steering} would change how sbatch submits the job:"
            " use the job's options (or slurm_args) instead"
        )
    return {**passed, **env}
