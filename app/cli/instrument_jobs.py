"""``gantry submit-instrument`` (a sample and a method) and ``gantry data`` (its samples)."""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from gantry.cli.errors import INTERRUPTED, USAGE, CliError, guarded
from gantry.cli.export import binary_output, write_chunks
from gantry.cli.runtime import Runtime
from gantry.cli.submit import post_job
from gantry.client.models import RolePage

Opt = typer.Option


def load_payload(source: str) -> dict[str, Any]:
    """A payload file: JSON, or TOML when it ends in .toml; ``-`` reads JSON from stdin."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(
            f"cannot read payload file {source}: {getattr(exc, 'strerror', None) or exc}", USAGE
        ) from None
    try:
        data: Any = tomllib.loads(text) if source.endswith(".toml") else json.loads(text)
    except ValueError as exc:
        raise CliError(
            f"{source} is not valid {'TOML' if source.endswith('.toml') else 'JSON'}: {exc}", USAGE
        ) from None
    if not isinstance(data, dict):
        raise CliError(f"{source} must hold an object with sample and method", USAGE)
    if isinstance(data.get("payload"), dict) and "method" not in data:
        data = data["payload"]  # a whole job body, as for the API
    payload: dict[str, Any] = data
    return payload


@guarded
def submit_instrument(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="PAYLOAD",
            help="JSON or .toml file with sample and method (tomato's payload); - for stdin.",
        ),
    ],
    name: Annotated[str | None, Opt("--name", "-n", help="Job name (default: the file's).")] = None,
    sample: Annotated[
        str | None, Opt("--sample", "-s", help="Sample name (replaces the file's).")
    ] = None,
    after: Annotated[
        list[int] | None,
        Opt("--after", metavar="ID", help="Run after this job completed. Repeatable."),
    ] = None,
    tag: Annotated[list[str] | None, Opt("--tag", "-t", help="Tag. Repeatable.")] = None,
    priority: Annotated[int, Opt(help="Higher runs first (-1000..1000).")] = 0,
    wait_: Annotated[
        bool, Opt("--wait", "-w", help="Follow the job until it ends; exit 1 unless it completed.")
    ] = False,
    as_json: Annotated[bool, Opt("--json", help="Print the job as JSON.")] = False,
) -> None:
    """Submit an instrument job; prints its id. It waits for a ready pipeline with its sample."""
    payload = load_payload(source)
    if sample is not None:
        payload["sample"] = {**(payload.get("sample") or {}), "name": sample}
    stem = Path(source).stem if source != "-" else "instrument"
    body: dict[str, Any] = {
        "name": name
        or ("".join(c if c.isalnum() or c in "._" else "_" for c in stem) or "instrument"),
        "payload": payload,
        "depends_on": after or [],
        "tags": tag or [],
        "priority": priority,
    }
    if not body["name"][0].isalpha() and body["name"][0] != "_":
        body["name"] = "_" + body["name"]
    runtime: Runtime = ctx.obj
    post_job(runtime, body, wait_, as_json)


@guarded
def data(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="ID")],
    format_: Annotated[
        str,
        Opt(
            "--format", "-f", help="json (one sample per line), csv or netcdf (once the job ended)."
        ),
    ] = "json",
    role: Annotated[str | None, Opt("--role", "-r", help="Only this role.")] = None,
    output: Annotated[
        Path | None,
        Opt(
            "--output", "-o", help="Write to this file (needed for netcdf unless stdout is a pipe)."
        ),
    ] = None,
    follow: Annotated[
        bool, Opt("--follow", help="Print samples as they come until the job ends (JSON lines).")
    ] = False,
) -> None:
    """An instrument job's data: JSON lines, CSV or NetCDF (`gantry export` writes files)."""
    if format_ not in ("json", "csv", "netcdf"):
        raise CliError(f"--format {format_!r} is unknown: use json, csv or netcdf", USAGE)
    if format_ == "netcdf" and output is None and sys.stdout.isatty():
        raise CliError("NetCDF is binary: give --output FILE.nc or pipe it", USAGE)
    runtime: Runtime = ctx.obj
    with runtime.client() as api, binary_output(output) as out:
        try:
            if follow or format_ == "json":
                pages = (api.follow_data if follow else api.iter_data)(job_id, role=role)
                for page in pages:
                    _write(out, page)
            else:
                write_chunks(
                    api.download(job_id, "csv" if format_ == "csv" else "netcdf", role=role), out
                )
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED) from None


def _write(out: BinaryIO, page: RolePage) -> None:
    lines = (json.dumps({"role": page.role, **s}) + "\n" for s in page.samples)
    out.write("".join(lines).encode())
    out.flush()
