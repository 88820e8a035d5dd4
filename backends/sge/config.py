"""The sge backend's config keys (``backend.sge.<key>``), read from strings.

- ``poll_interval`` (s, default 1): how often ``qstat -xml`` is run;
- ``fast_poll_interval`` (s, default 0.2): how often the accounting file is
  read while a tracked job runs (its end is a record there, no command
  needed), and the shortest gap between qstats after a submit or cancel;
- ``submit_retries`` (default 5) and ``retry_delay`` (s, default 0.5, doubled
  each time) while qmaster does not answer;
- ``command_timeout`` (s, default 30) for every SGE command;
- ``forget_after`` (s, default 60): a job neither qstat nor the accounting
  file knows that long is reported UNKNOWN;
- ``accounting_wait`` (s, default 20, above qmaster's default 15 s flush):
  how long a job gone from qstat waits for its accounting record before
  ``qacct`` is asked instead (at once for jobs adopted after a restart);
- ``accounting_file``: the cell's accounting file (default
  ``$SGE_ROOT/$SGE_CELL/common/accounting``);
- ``job_name_prefix`` (default ``gantry``), and a default for any job option
  (``queue``, ``account``, ``parallel_env``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gantry.backends.scheduler.options import name_prefix, option_defaults, read_numbers
from gantry.backends.sge.accounting import default_path
from gantry.backends.sge.submission import OPTION_DEFAULTS, normalise_options


@dataclass(slots=True)
class SgeSettings:
    poll_interval: float = 1.0
    fast_poll_interval: float = 0.2
    submit_retries: int = 5
    retry_delay: float = 0.5
    command_timeout: float = 30.0
    forget_after: float = 60.0
    accounting_wait: float = 20.0
    accounting_file: Path = field(default_factory=default_path)
    job_name_prefix: str = "gantry"
    option_defaults: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> SgeSettings:
        """Read the config strings; BackendError names a bad key and the fix."""
        settings = cls()
        read_numbers(settings, config, "sge")
        if config.get("accounting_file"):
            settings.accounting_file = Path(config["accounting_file"])
        settings.job_name_prefix = name_prefix(config, "sge")
        settings.option_defaults = option_defaults(config, "sge", OPTION_DEFAULTS,
                                                   normalise_options)  # fmt: skip
        return settings
