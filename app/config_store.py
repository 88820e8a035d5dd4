"""gwf-style configuration: dotted keys kept in ``<data_dir>/config.json``.

``gantry config set backend.slurm.account lab`` writes the file; the
environment overrides it: ``backend.slurm.account`` is read from
``GANTRY_BACKEND__SLURM__ACCOUNT`` when set (dots become double underscores,
so names that contain underscores stay unambiguous).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

# Segments after the first may hold hyphens: gwf backends are named gwf-<name>.
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_][a-z0-9_-]*)+$")
ENV_PREFIX = "GANTRY_"


class ConfigError(ValueError):
    """A key or the config file is not usable; the message says how to fix it."""


def check_key(key: str) -> str:
    if not KEY_PATTERN.match(key):
        raise ConfigError(
            f"config key {key!r} is malformed: use dotted lowercase words, "
            "e.g. backend.local.max_cores"
        )
    return key


def env_name(key: str) -> str:
    return ENV_PREFIX + check_key(key).upper().replace(".", "__")


class ConfigStore:
    """Reads and writes the config file; every write replaces it atomically."""

    def __init__(self, path: Path, environ: Mapping[str, str] | None = None) -> None:
        self.path = path
        self._environ = os.environ if environ is None else environ

    def _read_file(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"config file {self.path} is unreadable ({exc}); fix or delete it"
            ) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {self.path} must hold a JSON object; fix or delete it")
        return {str(k): str(v) for k, v in data.items()}

    def _write_file(self, data: Mapping[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")
        os.replace(tmp, self.path)

    def items(self) -> dict[str, str]:
        """Every key, the file's values overridden by the environment's."""
        data = self._read_file()
        for name, value in self._environ.items():
            if name.startswith(ENV_PREFIX) and "__" in name:
                key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
                if KEY_PATTERN.match(key):
                    data[key] = value
        return data

    def get(self, key: str) -> str | None:
        return self.items().get(check_key(key))

    def set(self, key: str, value: str) -> None:
        data = self._read_file()
        data[check_key(key)] = value
        self._write_file(data)

    def unset(self, key: str) -> bool:
        data = self._read_file()
        found = data.pop(check_key(key), None) is not None
        if found:
            self._write_file(data)
        return found

    def section(self, prefix: str) -> dict[str, str]:
        """Keys under ``prefix.`` with the prefix removed: ``section("backend.local")``."""
        head = prefix + "."
        return {k[len(head) :]: v for k, v in self.items().items() if k.startswith(head)}
