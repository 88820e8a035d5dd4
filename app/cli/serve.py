"""``gantry serve``: the server in this process (uvicorn, one worker)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gantry.cli.errors import FAILED, USAGE, CliError, guarded

if TYPE_CHECKING:
    from gantry.settings import Settings

# Open event streams would hold a graceful shutdown forever; cut them after this.
GRACEFUL_SECONDS = 10


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from GANTRY_* plus the options given; bad values are usage errors."""
    # Imported here: pydantic-settings would slow every other command's start.
    from pydantic import ValidationError

    from gantry.settings import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        lines = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise CliError(
            "invalid settings (GANTRY_* variables or options):\n" + "\n".join(lines), USAGE
        ) from None


def _refuse_what_the_app_would(settings: Settings) -> None:
    """Say it plainly here; the app refuses too, but inside a start-up traceback."""
    from gantry import startup
    from gantry.drivers.registry import DriverRegistry

    try:
        startup.refuse_second_sqlite_server(settings.resolved_database_url)
        if not startup.is_loopback(settings.host):
            has_tokens = startup.tokens_exist(settings.resolved_database_url)
            startup.refuse_exposure(settings.host, has_tokens)
        names = DriverRegistry.discover().names()
        startup.devices_or_refuse(settings.resolved_devices_file, names)
    except startup.StartupRefused as exc:
        raise CliError(str(exc), USAGE) from None


@guarded
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: GANTRY_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: GANTRY_PORT or 8000).")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir", "-d", help="Database, logs and runs (default: GANTRY_DATA_DIR or ./var)."
        ),
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
) -> None:
    """Run the gantry server; SIGTERM or Ctrl-C stop it gracefully."""
    import uvicorn

    from gantry import logs
    from gantry.main import create_app

    settings = load_settings(host=host, port=port, data_dir=data_dir, log_level=log_level)
    logs.configure(settings.log_level)
    _refuse_what_the_app_would(settings)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        server_header=False,
    )
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise typer.Exit(FAILED)  # uvicorn logged why (port in use, failed start-up)
