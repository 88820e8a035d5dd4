"""docs/deploy.md lists every setting, with the defaults the code has.

Its tables are read back here and held against the code: the server's
``Settings`` fields, and the config keys of the local, Slurm and SGE
backends. A setting added, renamed or given a new default fails this test
until the doc says so too.
"""

from __future__ import annotations

import re
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import PydanticUndefined

from gantry.backends.local.limits import DEFAULT_KILL_GRACE, Limits
from gantry.backends.sge.config import SgeSettings
from gantry.backends.slurm.config import SlurmSettings
from gantry.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"
#: Not a config key: what the job options' defaults are kept in.
NOT_KEYS = {"option_defaults"}


def table_after(heading: str) -> dict[str, str]:
    """The first table after the line ``heading``: first column -> second, without backticks."""
    lines = DOC.read_text().splitlines()
    start = lines.index(heading)
    rows: dict[str, str] = {}
    for line in lines[start + 1 :]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if set(cells[0]) <= {"-"} or cells[0] in ("variable", "key"):
            continue
        rows[cells[0].strip("`")] = cells[1]
    return rows


def shown(value: Any) -> str | None:
    """How the doc writes a plain default; None for those it describes in words."""
    if value is None or value is PydanticUndefined or isinstance(value, list | dict):
        return None
    return f"`{value}`"


def test_every_server_setting_is_in_the_table_with_its_default() -> None:
    table = table_after("### Server (`GANTRY_*` environment variables)")
    wanted = {f"GANTRY_{name.upper()}": field for name, field in Settings.model_fields.items()}
    assert sorted(table) == sorted(wanted)
    for variable, field in wanted.items():
        default = shown(field.default)
        if default is not None:
            assert table[variable] == default, variable


@pytest.mark.parametrize(
    ("heading", "settings"),
    [("`backend.slurm.<key>` (`docs/slurm.md`):", SlurmSettings),
     ("`backend.sge.<key>` (`docs/sge.md`):", SgeSettings),
     ("`backend.local.<key>`:", Limits)],
)  # fmt: skip
def test_every_backend_key_is_in_its_table_with_its_default(heading: str, settings: type) -> None:
    table = table_after(heading)
    keys = {f.name: f for f in fields(settings) if f.name not in NOT_KEYS}
    assert sorted(table) == sorted(keys)
    for key, field in keys.items():
        if field.default is not MISSING and (default := shown(field.default)) is not None:
            assert table[key] == default, key


def test_the_local_backend_defaults_the_doc_words() -> None:
    # Limits has no field defaults (they are read from the machine); the one number is here.
    assert table_after("`backend.local.<key>`:")["kill_grace"] == f"`{DEFAULT_KILL_GRACE}`"


def test_the_engine_wide_backend_key_is_named() -> None:
    dispatch = (DOC.parents[1] / "app" / "jobs" / "dispatch.py").read_text()
    [key] = re.findall(r'config\.get\("(\w+)", "(?:\d+)"\)', dispatch)
    assert f"`{key}` (default 16)" in DOC.read_text()
