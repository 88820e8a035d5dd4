"""Small parts of a crate: JSON-LD values, versions, and the data files of a job."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, metadata, version
from pathlib import Path
from typing import Any
from urllib.parse import quote

from gantry.instruments import export as data_export
from gantry.instruments.data import role_file
from gantry.jobs.accounting import accounting_of_row
from gantry.schemas import JobDetail

#: schema.org's ActionStatusType of each terminal state
STATUS = {
    "completed": "http://schema.org/CompletedActionStatus",
    "failed": "http://schema.org/FailedActionStatus",
    "cancelled": "http://schema.org/FailedActionStatus",
}
#: encodingFormat by suffix; other files get what ``mimetypes`` guesses
FORMATS = {
    ".nc": "application/x-netcdf",
    ".csv": "text/csv",
    ".json": "application/json",
    ".log": "text/plain",
    ".sh": "text/x-shellscript",
}


def iso(value: Any) -> str | None:
    """ISO 8601; stored times are UTC (naive ones from SQLite too)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return str(value.isoformat())


def stamp(value: Any) -> float | None:
    """A stored time as a Unix timestamp."""
    text = iso(value)
    return None if text is None else datetime.fromisoformat(text).timestamp()


def json_default(value: object) -> str:
    if isinstance(value, datetime):
        return str(iso(value))
    return str(value)


def gantry_version() -> str | None:
    try:
        return version("gantry")
    except PackageNotFoundError:
        return None


def package_url(package: str | None) -> str | None:
    """The home of an installed distribution as its metadata gives it (repository first)."""
    if not package:
        return None
    try:
        meta = metadata(package)
    except PackageNotFoundError:
        return None
    urls = dict(
        (label.strip().lower(), url.strip())
        for label, _, url in (u.partition(",") for u in meta.get_all("Project-URL") or [])
    )
    found = (
        urls.get("repository")
        or urls.get("homepage")
        or next(iter(meta.get_all("Home-page") or []), None)
    )
    return found or next(iter(urls.values()), None)


def properties(owner: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``additionalProperty`` values of entity ``owner``: schema.org PropertyValues.

    Each is an entity of its own (an RO-Crate graph is flat); structured
    values go in as JSON text.
    """
    out = []
    for name, value in values.items():
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            value = json.dumps(value, default=str, sort_keys=True)
        key = quote(f"{owner}-{name}".replace(" ", "-"), safe="#-_.:/")
        out.append({"@id": key, "@type": "PropertyValue", "name": name, "value": value})
    return out


def job_record(row: Mapping[str, Any], depends_on: list[int]) -> dict[str, Any]:
    """A job as ``GET /jobs/{id}`` shows it, for a crate that may be published.

    Environment values are left out (they often hold secrets), their names kept.
    """
    record = {k: row[k] for k in JobDetail.model_fields if k in row}
    record["env"] = {name: None for name in row.get("env") or {}}
    record["depends_on"] = depends_on
    record["accounting"] = accounting_of_row(row)
    return record


def roles_with_data(directory: Path | None) -> list[str]:
    """The roles of an instrument job's attempt that stored samples."""
    if directory is None:
        return []
    return [r for r in data_export.roles_in(directory) if role_file(directory, r).exists()]


def write_csv(directory: Path, roles: list[str], path: Path) -> None:
    """Every sample of ``roles`` as one CSV file, streamed from the stored lines."""
    with path.open("w", encoding="utf-8", newline="") as out:
        data_export.write_csv(directory, roles, out)
