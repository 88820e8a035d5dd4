"""Server settings, from ``GANTRY_*`` environment variables (pydantic-settings).

Built by ``Settings()`` where the process starts (CLI, tests); never at import.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the server needs to start. Each field is ``GANTRY_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="GANTRY_", extra="ignore")

    data_dir: Path = Field(Path("var"), description="Where the database, logs and runs live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file <data_dir>/gantry.db."
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$")
    default_backend: str = "local"
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024)
    max_batch_jobs: int = Field(20_000, ge=1)
    #: the most tasks one array job may have (GANTRY_MAX_ARRAY_TASKS)
    max_array_tasks: int = Field(100_000, ge=1)
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed by CORS; empty: CORS off."
    )
    enabled_backends: list[str] | None = Field(
        None, description="Backends to start; default: every one installed."
    )
    server_lease: float = Field(
        10.0,
        ge=1.0,
        le=3600.0,
        description="Several servers on PostgreSQL: seconds without a heartbeat after which "
        "the other servers take a server's jobs over.",
    )
    devices_file: Path | None = Field(
        None,
        description="TOML file of devices and pipelines; default: <data_dir>/devices.toml "
        "if it exists, else no instruments.",
    )

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'gantry.db'}"

    @property
    def resolved_devices_file(self) -> Path | None:
        """The devices file to load, or None when there is none (no instruments)."""
        if self.devices_file is not None:
            return self.devices_file.expanduser().resolve()
        default = self.resolved_data_dir / "devices.toml"
        return default if default.is_file() else None

    @property
    def log_dir(self) -> Path:
        return self.resolved_data_dir / "logs"
