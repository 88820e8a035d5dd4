"""Each driver process logs to its own file, ``<log dir>/driver-<name>.log``, as the server does.

The server hands the formatter over by its import path (gantry's JSON
formatter), so a driver process logs structured lines without this package
importing the server. Whatever the process writes to stderr (a crash's
stacks from faulthandler) lands in the same file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def log_file(log_dir: Path, driver: str) -> Path:
    """``driver-tomato-example_counter.log`` for ``tomato:example_counter``."""
    return log_dir / f"driver-{re.sub(r'[^A-Za-z0-9_.-]', '-', driver)}.log"


def logging_config(driver: str, level: str | int, formatter: str | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the process: one handler on stderr (its log file).

    ``formatter`` is the import path of a ``logging.Formatter`` class (the
    server's); None gives plain text lines.
    """
    fmt: dict[str, Any] = (
        {"()": formatter}
        if formatter
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(driver)s]: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"driver": fmt},
        "filters": {"driver": {"()": "gantry.drivers.process.worker.Tag", "driver": driver}},
        "handlers": {
            "log": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "driver",
                "filters": ["driver"],
            }
        },
        "root": {"level": level, "handlers": ["log"]},
    }
