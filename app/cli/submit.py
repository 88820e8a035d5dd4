"""``gantry submit`` and ``gantry submit-batch``."""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from typer.core import TyperCommand

from gantry.cli import render, wait
from gantry.cli.errors import FAILED, USAGE, CliError, guarded
from gantry.cli.runtime import Runtime
from gantry.client.models import JobBatchSubmitted

WORDS = "gantry.command_words"
_INT = re.compile(r"^[+-]?\d+$")
_NAME_BAD = re.compile(r"[^A-Za-z0-9._]")


class SubmitCommand(TyperCommand):
    """Keeps the words after the first ``--`` apart: they are the job's command.

    click would mix them with the SCRIPT_FILE argument, and a file name and
    a one-word command look alike.
    """

    # ``ctx`` is click's Context, whose module moved when typer vendored click.
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta[WORDS] = args[cut + 1 :]
            args = args[:cut]
        return super().parse_args(ctx, args)


def read_script(source: str | None, words: list[str] | None, stdin: TextIO) -> str:
    """The job's script: the words after ``--``, a file, or stdin."""
    if words is not None:
        if source is not None:
            raise CliError(
                f"give a script file ({source}) or a command after `--`, not both", USAGE
            )
        if not words:
            raise CliError("nothing after `--`: give the command to run", USAGE)
        return shlex.join(words)
    if source == "-" or (source is None and not stdin.isatty()):
        text, origin = stdin.read(), "stdin"
    elif source is None:
        raise CliError(
            "give the job's script: a file, `-` for stdin, or a command after `--` "
            "(gantry submit -- echo hello)",
            USAGE,
        )
    else:
        try:
            text, origin = Path(source).read_text(), source
        except (OSError, UnicodeDecodeError) as exc:
            raise CliError(
                f"cannot read script file {source}: {getattr(exc, 'strerror', None) or exc}", USAGE
            ) from None
    if not text.strip():
        raise CliError(f"the script from {origin} is empty: give the commands the job runs", USAGE)
    return text


def default_name(source: str | None, words: list[str] | None) -> str | None:
    """A job name like Slurm's: the script file's stem or the command's name."""
    if words:
        base = os.path.basename(words[0])
    elif source and source != "-":
        base = Path(source).stem
    else:
        return None
    name = _NAME_BAD.sub("_", base)[:200]
    if not name:
        return None
    return name if name[0].isalpha() or name[0] == "_" else "_" + name


def parse_pairs(pairs: list[str], what: str, *, ints: bool) -> dict[str, Any]:
    """``key=value`` words to a dict; values that look like integers become ints."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise CliError(f"{what} {pair!r} is malformed: use KEY=VALUE", USAGE)
        parsed[key] = int(value) if ints and _INT.match(value) else value
    return parsed


def absolute(path: Path) -> str:
    return os.path.abspath(path.expanduser())


Opt = typer.Option


@guarded
def submit(
    ctx: typer.Context,
    script: Annotated[
        str | None,
        typer.Argument(
            metavar="SCRIPT_FILE|-",
            help="Shell script to run; `-` or piped stdin reads it from stdin. Or give the "
            "command after `--`: gantry submit -- make all.",
        ),
    ] = None,
    name: Annotated[
        str | None, Opt("--name", "-n", help="Job name (default: the script's or command's name).")
    ] = None,
    backend: Annotated[
        str | None, Opt("--backend", "-b", help="Backend (default: the server's).")
    ] = None,
    option: Annotated[
        list[str] | None,
        Opt(
            "--option",
            "-o",
            metavar="KEY=VALUE",
            help="Backend option, e.g. -o cores=4 -o walltime=01:00:00. Repeatable.",
        ),
    ] = None,
    after: Annotated[
        list[int] | None,
        Opt("--after", metavar="ID", help="Run after this job completed. Repeatable."),
    ] = None,
    tag: Annotated[
        list[str] | None, Opt("--tag", "-t", metavar="TAG", help="Tag. Repeatable.")
    ] = None,
    priority: Annotated[int, Opt(help="Higher runs first (-1000..1000).")] = 0,
    array: Annotated[
        str | None,
        Opt(
            "--array",
            "-a",
            metavar="INDICES",
            help="An array job: one task per index, Slurm's syntax (0-99, 1,3,5-9, 0-99:2; "
            "%K: at most K at once, e.g. 0-99%10). Each task sees GANTRY_ARRAY_INDEX.",
        ),
    ] = None,
    workdir: Annotated[
        Path | None,
        Opt("--workdir", "-C", help="Directory the job starts in (default: the current one)."),
    ] = None,
    env: Annotated[
        list[str] | None,
        Opt("--env", "-e", metavar="KEY=VALUE", help="Environment variable. Repeatable."),
    ] = None,
    wait_: Annotated[
        bool, Opt("--wait", "-w", help="Follow the job until it ends; exit 1 unless it completed.")
    ] = False,
    as_json: Annotated[
        bool, Opt("--json", help="Print the submitted job (with --wait: the ended job) as JSON.")
    ] = False,
) -> None:
    """Submit a command job; prints its id."""
    words: list[str] | None = ctx.meta.get(WORDS)
    body: dict[str, Any] = {
        "name": name or default_name(script, words),
        "backend": backend,
        "spec": read_script(script, words, sys.stdin),
        "options": parse_pairs(option or [], "option", ints=True),
        "depends_on": after or [],
        "working_dir": absolute(workdir or Path.cwd()),
        "env": parse_pairs(env or [], "env variable", ints=False),
        "tags": tag or [],
        "priority": priority,
        "array": array,
    }
    runtime: Runtime = ctx.obj
    post_job(runtime, {k: v for k, v in body.items() if v is not None}, wait_, as_json)


def post_job(runtime: Runtime, body: dict[str, Any], wait_: bool, as_json: bool) -> None:
    """Submit one job, print its id (or JSON), and with ``wait_`` follow it to its end."""
    with runtime.client() as api:
        job = api.submit(body)  # a lost answer is resent: the client keys it
        for warning in job.warnings:
            render.warn(f"warning: {warning}")
        if as_json and not wait_:
            render.print_json(job)
        elif not as_json:
            print(job.id, flush=True)
        if not wait_:
            return
        ended = wait.wait_for_job(api, job.id)
    if as_json:
        render.print_json(ended)
    raise typer.Exit(wait.report_end(ended))


def load_batch(source: str, stdin: TextIO) -> list[dict[str, Any]]:
    """The jobs of a batch file: ``{"jobs": [...]}`` or a bare list."""
    try:
        text = stdin.read() if source == "-" else Path(source).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            f"cannot read batch file {source}: {getattr(exc, 'strerror', None) or exc}", USAGE
        ) from None
    origin = "stdin" if source == "-" else source
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{origin} is not valid JSON: {exc}", USAGE) from None
    jobs = data.get("jobs") if isinstance(data, dict) else data
    if not isinstance(jobs, list) or not all(isinstance(j, dict) for j in jobs):
        raise CliError(f'{origin} must hold {{"jobs": [...]}} or a list of job objects', USAGE)
    if not jobs:
        raise CliError(f"{origin} holds no jobs", USAGE)
    return jobs


@guarded
def submit_batch(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="FILE.json | -",
            help='JSON: {"jobs": [...]} or a list of jobs as for POST /api/v1/jobs.',
        ),
    ],
    workdir: Annotated[
        Path | None,
        Opt(
            "--workdir",
            "-C",
            help="For jobs without a "
            "working_dir, and base of relative ones (default: "
            "the current directory).",
        ),
    ] = None,
    wait_: Annotated[
        bool,
        Opt(
            "--wait", "-w", help="Show progress until all jobs ended; exit 1 unless all completed."
        ),
    ] = False,
    as_json: Annotated[bool, Opt("--json", help="Print the server's answer as JSON.")] = False,
) -> None:
    """Submit many jobs at once (all are stored, or none); prints `id name` per job."""
    jobs = load_batch(source, sys.stdin)
    base = Path(absolute(workdir or Path.cwd()))
    for job in jobs:
        given = job.get("working_dir")
        if given is None or isinstance(given, str):  # anything else: the server says why
            job["working_dir"] = str(base / given) if given else str(base)
    runtime: Runtime = ctx.obj
    with runtime.client() as api:
        answer = api.batch(jobs)
        announce(answer)
        if as_json:
            render.print_json(answer)
        else:
            for ref in answer.jobs:
                print(ref.id, ref.name, flush=True)
        if not wait_:
            return
        ended = wait.wait_for_batch(api, (ref.id for ref in answer.jobs))
    names = {ref.id: ref.name for ref in answer.jobs}
    unsuccessful = [
        f"{i} {names[i]} ({state})" for i, state in sorted(ended.items()) if state != "completed"
    ]
    all_done = not unsuccessful
    render.note(
        f"{len(ended)} jobs ended: {wait.summary(Counter(ended.values()))}",
        "green" if all_done else "red",
    )
    if unsuccessful:
        render.note("not completed: " + ", ".join(unsuccessful), "red")
    raise typer.Exit(0 if all_done else FAILED)


def announce(answer: JobBatchSubmitted) -> None:
    for warning in answer.warnings:
        render.warn(f"warning: {warning}")
