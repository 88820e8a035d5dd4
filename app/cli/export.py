"""``gantry export``: an instrument job's data as NetCDF or CSV, or a job's RO-Crate.

Each kind of file is a source of byte chunks from the client; writing them
is shared with ``gantry data``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

import typer

from gantry.cli import render
from gantry.cli.errors import INTERRUPTED, USAGE, CliError, guarded
from gantry.cli.runtime import Runtime

Opt = typer.Option
Format = Literal["netcdf", "csv"]
SUFFIXES: dict[str, str] = {"netcdf": ".nc", "csv": ".csv"}


@contextmanager
def binary_output(path: Path | None) -> Iterator[BinaryIO]:
    """The file at ``path``, or stdout's bytes (left open)."""
    if path is None:
        sys.stdout.flush()
        yield sys.stdout.buffer
        return
    try:
        out = path.open("wb")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}", USAGE) from None
    with out:
        yield out


def write_chunks(chunks: Iterable[bytes], out: BinaryIO) -> int:
    """Write chunks as they arrive; the bytes written."""
    size = 0
    for chunk in chunks:
        out.write(chunk)
        size += len(chunk)
    out.flush()
    return size


@guarded
def export(
    ctx: typer.Context,
    job_id: Annotated[int, typer.Argument(metavar="ID")],
    format_: Annotated[
        str, Opt("--format", "-f", help="netcdf (once the job ended) or csv (any time).")
    ] = "netcdf",
    role: Annotated[str | None, Opt("--role", "-r", help="Only this role.")] = None,
    output: Annotated[
        Path | None,
        Opt(
            "--output",
            "-o",
            help="The file to write (default: job-ID.nc, .csv or -crate.zip); - for stdout.",
        ),
    ] = None,
    crate: Annotated[
        bool,
        Opt(
            "--crate", help="An RO-Crate zip of the ended job and its chain (docs/fair-export.md)."
        ),
    ] = False,
    chain: Annotated[
        bool, Opt("--chain/--no-chain", help="With --crate: the jobs before and after it too.")
    ] = True,
    license_: Annotated[
        str | None, Opt("--license", help="With --crate: the data's licence, SPDX id or URL.")
    ] = None,
) -> None:
    """Write a job's data to a file: NetCDF (a group per role), CSV, or an RO-Crate."""
    runtime: Runtime = ctx.obj
    if crate:
        if role is not None:
            raise CliError("--crate holds every role: leave out --role", USAGE)
        with runtime.client() as api:
            chunks = api.download_crate(job_id, chain=chain, license=license_)
            save(chunks, output or Path(f"job-{job_id}-crate.zip"))
        return
    if format_ not in SUFFIXES:
        raise CliError(f"--format {format_!r} is unknown: use {' or '.join(SUFFIXES)}", USAGE)
    kind: Format = "csv" if format_ == "csv" else "netcdf"
    target = output or Path(f"job-{job_id}{SUFFIXES[kind]}")
    with runtime.client() as api:
        save(api.download(job_id, kind, role=role), target)


def save(chunks: Iterable[bytes], target: Path) -> None:
    """Stream ``chunks`` into ``target`` (``-``: stdout); no partial file is left behind."""
    if str(target) == "-":
        with binary_output(None) as out:
            write_chunks(chunks, out)
        return
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as out:
            size = write_chunks(chunks, out)
        partial.replace(target)
    except KeyboardInterrupt:
        raise CliError(f"stopped: {target} was not written", INTERRUPTED) from None
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}", USAGE) from None
    finally:
        partial.unlink(missing_ok=True)
    render.note(f"wrote {target} ({size} bytes)", "green")
