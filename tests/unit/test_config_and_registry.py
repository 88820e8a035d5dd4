"""Dotted config keys (file + environment) and backend discovery."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from gantry.backends import registry
from gantry.config_store import ConfigError, ConfigStore, env_name


def test_config_file_round_trip_and_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    store = ConfigStore(path, environ={})
    store.set("backend.slurm.account", "lab")
    store.set("backend.local.max_cores", "4")
    assert store.get("backend.slurm.account") == "lab"
    assert store.section("backend.local") == {"max_cores": "4"}
    assert store.unset("backend.slurm.account") is True
    assert store.unset("backend.slurm.account") is False
    overridden = ConfigStore(path, environ={env_name("backend.local.max_cores"): "1"})
    assert env_name("backend.local.max_cores") == "GANTRY_BACKEND__LOCAL__MAX_CORES"
    assert overridden.section("backend.local") == {"max_cores": "1"}


@pytest.mark.parametrize("key", ["Backend.x", "backend", "backend..x", "backend.x y", "1.a"])
def test_malformed_keys_are_refused_with_an_example(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError, match="backend.local.max_cores"):
        ConfigStore(tmp_path / "c.json", environ={}).set(key, "1")


def test_a_corrupt_config_file_says_how_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{nope")
    with pytest.raises(ConfigError, match="fix or delete it"):
        ConfigStore(path, environ={}).items()


def test_a_broken_backend_is_recorded_and_the_others_still_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    points = [
        EntryPoint("fake", "tests.fakes:FakeBackend", registry.GROUP),
        EntryPoint("broken", "no_such_module_anywhere:Backend", registry.GROUP),
        EntryPoint("wrong", "pathlib:Path", registry.GROUP),
    ]
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    found = registry.discover()
    assert found["fake"].loaded
    assert not found["broken"].loaded and "ModuleNotFoundError" in (found["broken"].error or "")
    assert found["wrong"].error == "pathlib:Path is not a gantry Backend subclass"
