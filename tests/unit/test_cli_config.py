"""Local commands: ``config`` and ``db`` on a temporary data dir, ``serve``'s checks."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from typer.testing import CliRunner

from gantry.cli.main import app


def run(*args: str, env: Mapping[str, str | None] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_set_get_list_unset(tmp_path: Path) -> None:
    data = str(tmp_path)
    assert run("config", "set", "backend.local.max_cores", "8", "--data-dir", data)[0] == 0
    assert json.loads((tmp_path / "config.json").read_text()) == {"backend.local.max_cores": "8"}
    assert run("config", "get", "backend.local.max_cores", "-d", data) == (0, "8\n", "")
    code, out, _ = run("config", "list", "-d", data)
    assert code == 0 and out.split() == [
        "key",
        "value",
        "from",
        "backend.local.max_cores",
        "8",
        "file",
    ]
    assert run("config", "unset", "backend.local.max_cores", "-d", data)[0] == 0
    code, _, err = run("config", "get", "backend.local.max_cores", "-d", data)
    assert (code, err) == (1, "error: config key backend.local.max_cores is not set\n")
    assert run("config", "unset", "backend.local.max_cores", "-d", data)[0] == 1


def test_data_dir_from_the_environment_and_env_overrides(tmp_path: Path) -> None:
    env = {"GANTRY_DATA_DIR": str(tmp_path), "GANTRY_BACKEND__SLURM__ACCOUNT": "lab"}
    code, _, err = run("config", "set", "backend.slurm.account", "other", env=env)
    assert code == 0
    assert "GANTRY_BACKEND__SLURM__ACCOUNT is set and overrides this value" in err
    assert run("config", "get", "backend.slurm.account", env=env)[1] == "lab\n"
    assert "GANTRY_BACKEND__SLURM__ACCOUNT" in run("config", "list", env=env)[1]


def test_malformed_keys_and_files_exit_2(tmp_path: Path) -> None:
    code, _, err = run("config", "set", "Bad-Key", "1", "-d", str(tmp_path))
    assert code == 2
    assert err.startswith("error: config key 'Bad-Key' is malformed")
    (tmp_path / "config.json").write_text("[1]")
    code, _, err = run("config", "list", "-d", str(tmp_path))
    assert code == 2 and "must hold a JSON object" in err


def test_db_upgrade_then_current(tmp_path: Path) -> None:
    env = {"GANTRY_DATABASE_URL": None}
    code, out, _ = run("db", "current", "-d", str(tmp_path), env=env)
    assert (code, out) == (0, "none: run `gantry db upgrade`\n")
    code, _, err = run("db", "upgrade", "-d", str(tmp_path), env=env)
    assert code == 0 and "database at revision" in err
    code, out, _ = run("db", "current", "-d", str(tmp_path), env=env)
    assert code == 0 and out.strip() and "none" not in out


def test_db_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "gantry.db").write_text("not a database" * 100)
    code, _, err = run("db", "current", "-d", str(tmp_path), env={"GANTRY_DATABASE_URL": None})
    assert code == 1
    assert err.startswith("error: database sqlite:///") and "Traceback" not in err


def test_serve_refuses_bad_settings_before_starting(tmp_path: Path) -> None:
    code, _, err = run("serve", "--port", "70000", "--log-level", "loud", "-d", str(tmp_path))
    assert code == 2
    assert err.startswith("error: invalid settings (GANTRY_* variables or options):\n")
    assert "port: " in err and "log_level: " in err


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.startswith("gantry ")
