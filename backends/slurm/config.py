"""The slurm backend's config keys (``backend.slurm.<key>``), read from strings.

- ``poll_interval`` (s, default 1): how often the poller asks Slurm;
- ``fast_poll_interval`` (s, default 0.2) for ``fast_poll_cycles`` (default
  10) polls after a submit or cancel, so short jobs are seen moving at once;
- ``submit_retries`` (default 3) on transient sbatch errors, waiting
  ``retry_delay`` (s, default 0.5) and twice as long each time;
- ``submit_concurrency``: sbatch calls in flight (default 16);
- ``command_timeout`` (s, default 30) for every Slurm command;
- ``forget_after`` (s, default 60): a tracked job that neither squeue nor
  sacct knows for that long is reported UNKNOWN and dropped;
- ``accounting_wait`` (s, default 5): how long an end squeue saw waits for
  sacct's record of it (its CPU time and peak memory) before it is reported
  without them;
- ``job_name_prefix`` (default ``gantry``): jobs are named ``<prefix>-<key>``;
  give each gantry server sharing a Slurm user its own prefix;
- a default for any job option: ``account``, ``queue``, ``qos``, ...
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gantry.backends.scheduler.options import name_prefix, option_defaults, read_numbers
from gantry.backends.slurm.submission import OPTION_DEFAULTS, normalise_options


@dataclass(slots=True)
class SlurmSettings:
    poll_interval: float = 1.0
    fast_poll_interval: float = 0.2
    fast_poll_cycles: int = 10
    submit_retries: int = 3
    retry_delay: float = 0.5
    submit_concurrency: int = 16
    command_timeout: float = 30.0
    forget_after: float = 60.0
    accounting_wait: float = 5.0
    job_name_prefix: str = "gantry"
    option_defaults: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> SlurmSettings:
        """Read the config strings; BackendError names a bad key and the fix."""
        settings = cls()
        read_numbers(settings, config, "slurm", {"submit_concurrency": 1})
        settings.job_name_prefix = name_prefix(config, "slurm", settings.job_name_prefix)
        settings.option_defaults = option_defaults(
            config, "slurm", OPTION_DEFAULTS, normalise_options
        )
        return settings
