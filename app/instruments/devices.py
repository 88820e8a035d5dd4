"""The devices file: which instruments exist and how they form pipelines.

A TOML file (``GANTRY_DEVICES_FILE``, default ``<data_dir>/devices.toml``),
tomato's ``devices.yml`` in TOML::

    [[devices]]
    name = "counter"              # how pipelines refer to it
    driver = "example_counter"    # a driver of the gantry.drivers entry points
    address = "demo"              # the driver's address of the instrument
    channels = ["1", "2"]         # one component per channel
    pollrate = 0.2                # optional: s between data drains of a task

    [[pipelines]]
    name = "pip-counter"
    components = [{ role = "counter", device = "counter", channel = "1" }]

    [drivers.example_counter]     # optional: how the driver's process is supervised
    in_process = false            # true: run it inside the server, not in its own process
    hang_timeout = 5              # s its process may leave a heartbeat unanswered
    max_rss_mb = 1024             # restart it above this much memory (0: no limit)

A malformed file stops start-up: :class:`DevicesFileError` names the file,
the line and the field, and says what to change.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gantry.instruments.schemas import NAME_PATTERN

ROLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]
#: Roles name NetCDF groups and CSV values: no dots, no slashes.
Role = Annotated[str, Field(min_length=1, max_length=64, pattern=ROLE_PATTERN)]
Channel = Annotated[str, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]


class DeviceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    driver: Annotated[str, Field(min_length=1, max_length=200)]
    address: Annotated[str, Field(min_length=1, max_length=1000)]
    channels: Annotated[list[Channel], Field(min_length=1, max_length=1000)]
    pollrate: Annotated[float | None, Field(gt=0, le=3600)] = None


class ComponentRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    device: Name
    channel: Channel


class PipelineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    components: Annotated[list[ComponentRef], Field(min_length=1, max_length=1000)]

    @property
    def roles(self) -> dict[str, ComponentRef]:
        return {c.role: c for c in self.components}


class DriverOptions(BaseModel):
    """``[drivers.<name>]``: where driver ``<name>`` runs and how its process is watched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: None: as the driver asks (``ModelInterface.in_process``), else its own process
    in_process: bool | None = None
    hang_timeout: Annotated[float, Field(gt=0, le=3600)] = 5.0
    max_rss_mb: Annotated[float, Field(ge=0)] = 1024.0


class DevicesDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    devices: list[DeviceConfig] = Field(default_factory=list)
    pipelines: list[PipelineConfig] = Field(default_factory=list)
    drivers: dict[str, DriverOptions] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Devices:
    """The loaded file (or nothing): devices by name, pipelines by name."""

    path: Path | None = None
    devices: dict[str, DeviceConfig] = field(default_factory=dict)
    pipelines: dict[str, PipelineConfig] = field(default_factory=dict)
    driver_options: dict[str, DriverOptions] = field(default_factory=dict)

    def drivers(self) -> list[str]:
        return sorted({d.driver for d in self.devices.values()})


class DevicesFileError(ValueError):
    """The devices file cannot be used; the message names the line and the field."""


Loc = tuple[str | int, ...]


def load_devices(path: Path | None, drivers: Collection[str]) -> Devices:
    """Read and check ``path`` (None: no instruments); ``drivers`` are the installed ones."""
    if path is None:
        return Devices()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DevicesFileError(
            f"devices file {path}: cannot read it ({reason}); fix GANTRY_DEVICES_FILE"
        ) from None
    return parse_devices(text, path, drivers)


def parse_devices(text: str, path: Path, drivers: Collection[str]) -> Devices:
    where = _Locator(text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DevicesFileError(f"devices file {path}: not valid TOML: {exc}") from None
    try:
        doc = DevicesDocument.model_validate(raw)
    except ValidationError as exc:
        # A misspelt field explains a "missing" one: report it first.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        loc: Loc = tuple(first["loc"])
        raise DevicesFileError(_message(path, where, loc, _pydantic_msg(first))) from None
    for loc, message in _problems(doc, drivers):
        raise DevicesFileError(_message(path, where, loc, message))
    return Devices(
        path=path,
        devices={d.name: d for d in doc.devices},
        pipelines={p.name: p for p in doc.pipelines},
        driver_options=dict(doc.drivers),
    )


def _pydantic_msg(error: Any) -> str:
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    if error.get("type") == "string_pattern_mismatch":
        return message + " (letters, digits, '_', '-' and '.'; roles without '.')"
    if error.get("type") == "extra_forbidden":
        known = {
            f
            for model in (
                DeviceConfig,
                ComponentRef,
                PipelineConfig,
                DevicesDocument,
                DriverOptions,
            )
            for f in model.model_fields
        }
        close = difflib.get_close_matches(str(error["loc"][-1]), sorted(known), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see docs/instruments.md"
        return f"unknown field: {hint}"
    return message


def _problems(doc: DevicesDocument, drivers: Collection[str]) -> list[tuple[Loc, str]]:
    """Cross-references pydantic cannot see: names, drivers, channels, roles."""
    found: list[tuple[Loc, str]] = []
    seen: dict[str, int] = {}
    for i, dev in enumerate(doc.devices):
        if dev.name in seen:
            found.append((("devices", i, "name"), f"device name {dev.name!r} is used twice"))
        seen.setdefault(dev.name, i)
        if dev.driver not in drivers:
            known = ", ".join(sorted(drivers)) or "none"
            found.append(
                (
                    ("devices", i, "driver"),
                    f"no driver named {dev.driver!r} is installed; installed: {known}",
                )
            )
        dupes = sorted({c for c in dev.channels if dev.channels.count(c) > 1})
        if dupes:
            found.append((("devices", i, "channels"), f"channels listed twice: {dupes}"))
    used = sorted({d.driver for d in doc.devices})
    for name in doc.drivers:
        if name not in used:
            found.append(
                (
                    ("drivers", name),
                    f"no device uses driver {name!r}; drivers of devices: "
                    f"{', '.join(used) or 'none'}",
                )
            )
    devices = {d.name: d for d in doc.devices}
    names: set[str] = set()
    for i, pip in enumerate(doc.pipelines):
        if pip.name in names:
            found.append((("pipelines", i, "name"), f"pipeline name {pip.name!r} is used twice"))
        names.add(pip.name)
        roles: set[str] = set()
        for k, ref in enumerate(pip.components):
            loc: Loc = ("pipelines", i, "components", k)
            if ref.role in roles:
                found.append(((*loc, "role"), f"role {ref.role!r} is used twice in this pipeline"))
            roles.add(ref.role)
            target = devices.get(ref.device)
            if target is None:
                known = ", ".join(sorted(devices)) or "none"
                found.append(
                    ((*loc, "device"), f"no device named {ref.device!r}; devices: {known}")
                )
            elif ref.channel not in target.channels:
                found.append(
                    (
                        (*loc, "channel"),
                        f"device {target.name!r} has no channel {ref.channel!r}; "
                        f"its channels: {', '.join(target.channels)}",
                    )
                )
    return found


def _message(path: Path, where: _Locator, loc: Loc, message: str) -> str:
    dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    line = where.line(loc)
    at = f", line {line}" if line else ""
    return f"devices file {path}{at}: {dotted or 'file'}: {message}"


_HEADER = re.compile(r"^\s*\[\[\s*([A-Za-z0-9_.\s\"]+?)\s*\]\]")
_TABLE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\s\"]+?)\s*\]")


class _Locator:
    """Finds the line of a field from its location, for error messages.

    tomllib keeps no positions, so this reads the text: the ``i``-th
    ``[[devices]]`` header, then the ``key =`` line below it. Inline tables
    (``components = [{...}, ...]``) are found by counting their keys.
    """

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: list[tuple[int, str]] = []
        for number, line in enumerate(self.lines, start=1):
            match = _HEADER.match(line) or _TABLE.match(line)
            if match:
                self.headers.append((number, re.sub(r"[\s\"]", "", match.group(1))))

    def line(self, loc: Sequence[str | int]) -> int | None:
        if len(loc) < 2 or not isinstance(loc[1], int):
            return self._key_line(1, len(self.lines), str(loc[0])) if loc else None
        section, index = str(loc[0]), loc[1]
        starts = [n for n, name in self.headers if name == section]
        if index >= len(starts):
            return self._key_line(1, len(self.lines), section)
        start = starts[index]
        sub = f"{section}.components"
        after = [n for n, name in self.headers if n > start and name != sub]
        end = (after[0] if after else len(self.lines) + 1) - 1
        rest = loc[2:]
        if not rest:
            return start
        if rest[0] == "components" and len(rest) >= 2 and isinstance(rest[1], int):
            return self._component_line(start, end, section, rest[1], rest[2:]) or start
        return self._key_line(start, end, str(rest[0])) or start

    def _component_line(
        self, start: int, end: int, section: str, k: int, rest: Sequence[str | int]
    ) -> int | None:
        subs = [
            n for n, name in self.headers if name == f"{section}.components" and start < n <= end
        ]
        if subs:
            if k >= len(subs):
                return subs[-1]
            sub_end = next((n - 1 for n in subs if n > subs[k]), end)
            key = str(rest[0]) if rest else None
            found = self._key_line(subs[k], sub_end, key) if key else None
            return found or subs[k]
        first = self._key_line(start, end, "components")
        if first is None:
            return None
        # Inline tables: the k-th "role =" (or the field's key) after "components =".
        key = str(rest[0]) if rest else "role"
        hits = [
            n
            for n in range(first, end + 1)
            if re.search(rf"(^|[{{,\s]){re.escape(key)}\s*=", self.lines[n - 1])
            for _ in range(
                len(re.findall(rf"(?:^|[{{,\s]){re.escape(key)}\s*=", self.lines[n - 1]))
            )
        ]
        return hits[k] if k < len(hits) else first

    def _key_line(self, start: int, end: int, key: str) -> int | None:
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        for number in range(start, min(end, len(self.lines)) + 1):
            if pattern.match(self.lines[number - 1]):
                return number
        return None
