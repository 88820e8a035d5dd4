"""Reading stored instrument data: pages of samples, CSV, NetCDF.

Every function is sync and runs on a worker thread. Only complete lines
count: a line being appended right now is read next time.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from gantry.instruments.data import read_meta, role_file

CHUNK = 1 << 20
#: Columns every CSV row starts with.
BASE_COLUMNS = ("role", "uts", "task", "task_name", "technique")


def roles_in(directory: Path) -> list[str]:
    """Roles with a data file, or those the job's metadata names."""
    found = {p.stem for p in directory.glob("*.jsonl")} if directory.is_dir() else set()
    meta = read_meta(directory)
    found |= set(meta.get("components", {}))
    return sorted(found)


def read_lines(path: Path, offset: int, limit: int) -> tuple[list[bytes], int]:
    """Up to ``limit`` complete lines from line ``offset``; and the offset after them."""
    lines: list[bytes] = []
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return lines, offset
    with handle:
        for line in itertools.islice(handle, offset, None):
            if len(lines) >= limit or not line.endswith(b"\n"):
                break
            lines.append(line[:-1])
    return lines, offset + len(lines)


def position_of(path: Path, line: int) -> int:
    """The byte position where complete line ``line`` starts (or the end of them)."""
    position = 0
    try:
        with path.open("rb") as handle:
            for text in itertools.islice(handle, line):
                if not text.endswith(b"\n"):
                    break
                position += len(text)
    except FileNotFoundError:
        return 0
    return position


def read_from(path: Path, position: int, limit: int = CHUNK) -> tuple[list[bytes], int]:
    """Complete lines from byte ``position`` (at most ``limit`` bytes); the new position."""
    try:
        with path.open("rb") as handle:
            handle.seek(position)
            data = handle.read(limit)
    except FileNotFoundError:
        return [], position
    end = data.rfind(b"\n")
    if end < 0:
        return [], position
    return data[:end].split(b"\n"), position + end + 1


def last_uts(directory: Path) -> float | None:
    """The newest timestamp stored for a job (any role), or None."""
    newest: float | None = None
    for role in roles_in(directory):
        path = role_file(directory, role)
        try:
            size = path.stat().st_size
            with path.open("rb") as handle:
                handle.seek(max(0, size - 64 * 1024))
                tail = handle.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
            uts = float(json.loads(tail)["uts"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        newest = uts if newest is None else max(newest, uts)
    return newest


def _samples(path: Path) -> Iterator[dict[str, Any]]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        for line in handle:
            if line.endswith(b"\n"):
                yield json.loads(line)


# --- CSV -------------------------------------------------------------------------


def value_columns(directory: Path, roles: Sequence[str]) -> list[str]:
    """Every value name, in order of first appearance (one pass over the data)."""
    seen: dict[str, None] = {}
    for role in roles:
        for sample in _samples(role_file(directory, role)):
            for name in sample.get("values", {}):
                seen.setdefault(name, None)
    return list(seen)


def csv_header(columns: Sequence[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([*BASE_COLUMNS, *columns])
    return out.getvalue()


def csv_rows(
    directory: Path, role: str, columns: Sequence[str], offset: int, limit: int
) -> tuple[str, int]:
    """CSV text of ``limit`` samples of ``role`` from ``offset``; the next offset."""
    lines, next_offset = read_lines(role_file(directory, role), offset, limit)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for line in lines:
        writer.writerow(_csv_row(role, json.loads(line), columns))
    return out.getvalue(), next_offset


def write_csv(directory: Path, roles: Sequence[str], out: TextIO) -> None:
    """The whole CSV of ``roles`` into ``out`` in one pass per role (no offsets to skip)."""
    columns = value_columns(directory, roles)
    out.write(csv_header(columns))
    writer = csv.writer(out, lineterminator="\n")
    for role in roles:
        for s in _samples(role_file(directory, role)):
            writer.writerow(_csv_row(role, s, columns))


def _csv_row(role: str, s: dict[str, Any], columns: Sequence[str]) -> list[Any]:
    values = s.get("values", {})
    return [
        role,
        repr(s["uts"]),
        s.get("task"),
        s.get("task_name") or "",
        s.get("technique"),
        *(_cell(values.get(c)) for c in columns),
    ]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


# --- NetCDF ------------------------------------------------------------------------


def netcdf_file(directory: Path, job: dict[str, Any]) -> Path:
    """A NetCDF4 file of the job: one group per role, metadata as attributes.

    Returns a temporary file the caller deletes.
    """
    import numpy as np
    import xarray as xr

    meta = read_meta(directory)
    fd, name = tempfile.mkstemp(suffix=".nc", prefix=f"gantry-{job['id']}-")
    os.close(fd)
    path = Path(name)
    root = xr.Dataset(
        attrs=_attrs(
            {
                "title": f"gantry job {job['id']} ({job['name']})",
                "job_id": job["id"],
                "job_name": job["name"],
                "job_state": job["state"],
                "attempt": meta.get("attempt", job.get("attempt")),
                "pipeline": meta.get("pipeline"),
                "sample": meta.get("sample"),
                "method": meta.get("method"),
                "roles": roles_in(directory),
            }
        )
    )
    try:
        root.to_netcdf(path, mode="w", engine="netcdf4")
        components = meta.get("components", {})
        for role in roles_in(directory):
            uts, tasks, techniques, columns, units = _columns(role_file(directory, role))
            data_vars: dict[str, Any] = {
                "task": ("uts", np.array(tasks, dtype="int32")),
                "technique": ("uts", np.array(techniques, dtype=str)),
            }
            for key, col in columns.items():
                data_vars[key] = ("uts", _array(col))
            ds = xr.Dataset(
                data_vars,
                coords={"uts": np.array(uts, dtype="float64")},
                attrs=_attrs({"role": role, **components.get(role, {})}),
            )
            ds["uts"].attrs.update(units="s", long_name="Unix timestamp of the sample")
            for key in columns:
                if key in units:
                    ds[key].attrs["units"] = units[key]
            ds.to_netcdf(path, mode="a", group=role, engine="netcdf4")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


Columns = tuple[list[float], list[int], list[str], dict[str, list[Any]], dict[str, str]]


def _columns(path: Path) -> Columns:
    """uts, task, technique and each value's column of one role, and the units.

    One pass that keeps columns, not samples: a million samples cost their
    values, not a million dicts.
    """
    uts: list[float] = []
    tasks: list[int] = []
    techniques: list[str] = []
    columns: dict[str, list[Any]] = {}
    units: dict[str, str] = {}
    for i, s in enumerate(_samples(path)):
        uts.append(float(s["uts"]))
        tasks.append(s.get("task", -1))
        techniques.append(sys.intern(s.get("technique") or ""))
        for key, value in s.get("values", {}).items():
            col = columns.get(key)
            if col is None:  # not setdefault: its default would be built every time
                col = columns[key] = [None] * i
            col.append(value)
        for col in columns.values():
            if len(col) <= i:
                col.append(None)
        units.update(s.get("units", {}))
    return uts, tasks, techniques, columns, units


def _array(values: list[Any]) -> Any:
    import numpy as np

    if all((isinstance(v, int | float) and not isinstance(v, bool)) or v is None for v in values):
        return np.array([np.nan if v is None else float(v) for v in values], dtype="float64")
    if all(isinstance(v, bool) or v is None for v in values):
        return np.array([-1 if v is None else int(v) for v in values], dtype="int8")
    return np.array(["" if v is None else str(v) for v in values], dtype=str)


def _attrs(values: dict[str, Any]) -> dict[str, Any]:
    """NetCDF attributes hold numbers and text: anything else goes in as JSON."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            out[key] = value
        else:
            out[key] = json.dumps(value, default=str)
    return out
