"""``gantry config``: dotted keys in ``<data_dir>/config.json``, edited locally.

The server reads the file when it starts, so a change needs a restart.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gantry.cli import render
from gantry.cli.errors import FAILED, USAGE, CliError, guarded
from gantry.config_store import ConfigError, ConfigStore, env_name

config_app = typer.Typer(
    help="Read and change the server's configuration (a local file).", no_args_is_help=True
)

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        "-d",
        envvar="GANTRY_DATA_DIR",
        show_envvar=True,
        help="The server's data dir (default: ./var).",
    ),
]


@contextmanager
def opened(data_dir: Path | None) -> Iterator[ConfigStore]:
    """The data dir's store; a :class:`ConfigError` becomes a usage error."""
    path = (data_dir or Path("var")).expanduser().resolve() / "config.json"
    try:
        yield ConfigStore(path)
    except ConfigError as exc:
        raise CliError(str(exc), USAGE) from None


@config_app.command("get")
@guarded
def get(key: str, data_dir: DataDirOpt = None) -> None:
    """Print a key's value (the environment overrides the file)."""
    with opened(data_dir) as config:
        value = config.get(key)
    if value is None:
        raise CliError(f"config key {key} is not set")
    print(value)


@config_app.command("set")
@guarded
def set_(key: str, value: str, data_dir: DataDirOpt = None) -> None:
    """Set a key in the config file, e.g. `backend.slurm.account lab`."""
    with opened(data_dir) as config:
        config.set(key, value)
    if env_name(key) in os.environ:
        render.warn(f"warning: {env_name(key)} is set and overrides this value")


@config_app.command("unset")
@guarded
def unset(key: str, data_dir: DataDirOpt = None) -> None:
    """Remove a key from the config file."""
    with opened(data_dir) as config:
        found = config.unset(key)
    if not found:
        raise CliError(f"config key {key} is not set in the config file", FAILED)


@config_app.command("list")
@guarded
def list_(data_dir: DataDirOpt = None) -> None:
    """Every key with its value and where it comes from."""
    with opened(data_dir) as config:
        items = config.items()
    if not items:
        render.note("no config keys set", "dim")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("key", "value", "from"):
        table.add_column(column)
    for key, value in sorted(items.items()):
        table.add_row(key, value, env_name(key) if env_name(key) in os.environ else "file")
    render.out().print(table)
