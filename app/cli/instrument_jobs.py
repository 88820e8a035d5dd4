"""``gantry submit-instrument`` (a sample and a method) and ``gantry data`` (its samples)."""

from __future__ import annotations

import json
import os
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from gantry.cli.client import API, STREAM_TIMEOUT, Runtime, check
from gantry.cli.errors import INTERRUPTED, USAGE, CliError, guarded
from gantry.cli.submit import post_job

Opt = typer.Option
PAGE = 10_000


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
    """An instrument job's data: JSON lines, CSV or NetCDF."""
    if format_ not in ("json", "csv", "netcdf"):
        raise CliError(f"--format {format_!r} is unknown: use json, csv or netcdf", USAGE)
    if format_ == "netcdf" and output is None and sys.stdout.isatty():
        raise CliError("NetCDF is binary: give --output FILE.nc or pipe it", USAGE)
    runtime: Runtime = ctx.obj
    params = {"role": role} if role else {}
    with output.open("wb") if output else os.fdopen(os.dup(sys.stdout.fileno()), "wb") as out:
        try:
            if follow:
                _follow(runtime, job_id, params, out)
            elif format_ == "json":
                _json_lines(runtime, job_id, params, out)
            else:
                _download(runtime, job_id, {**params, "format": format_}, out)
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED) from None


def _json_lines(runtime: Runtime, job_id: int, params: dict[str, Any], out: Any) -> None:
    """Every sample as a JSON line with its role, paging through each role."""
    path = f"/jobs/{job_id}/data"
    with runtime.client() as api:
        first = api.get(path, {**params, "limit": PAGE})
        for page in first["roles"]:
            while True:
                _write(out, page["role"], page["samples"])
                if len(page["samples"]) < PAGE:
                    break
                query = {"role": page["role"], "offset": page["next_offset"], "limit": PAGE}
                page = api.get(path, query)["roles"][0]


def _write(out: Any, role: str, samples: list[dict[str, Any]]) -> None:
    out.write("".join(json.dumps({"role": role, **s}) + "\n" for s in samples).encode())
    out.flush()


def _download(runtime: Runtime, job_id: int, params: dict[str, Any], out: Any) -> None:
    """CSV or NetCDF, streamed to ``out`` as it arrives."""
    token = os.environ.get("GANTRY_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = runtime.url.rstrip("/")
    try:
        with (
            httpx.Client(
                base_url=url, headers=headers, timeout=STREAM_TIMEOUT, transport=runtime.transport
            ) as http,
            http.stream("GET", f"{API}/jobs/{job_id}/data", params=params) as response,
        ):
            if response.is_error:
                response.read()
                check(response)
            for chunk in response.iter_bytes():
                out.write(chunk)
    except httpx.TransportError as exc:
        raise CliError(
            f"cannot read from the gantry server at {url} ({exc or type(exc).__name__})"
            ": is it running? (--url/GANTRY_URL)",
            USAGE,
        ) from None


def _follow(runtime: Runtime, job_id: int, params: dict[str, Any], out: Any) -> None:
    with (
        runtime.client() as api,
        api.stream(f"/jobs/{job_id}/data", {**params, "follow": True}) as events,
    ):
        for event in events:
            if event.event == "end":
                return
            if event.event == "data":
                batch = json.loads(event.data)
                _write(out, batch["role"], batch["samples"])
    raise CliError(
        f"the data stream ended before job {job_id} did: run `gantry data --follow {job_id}` again"
    )
