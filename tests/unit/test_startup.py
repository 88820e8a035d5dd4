"""The start-up checks that both ``create_app`` and ``gantry serve`` refuse with."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine

from gantry.startup import (
    StartupRefused,
    devices_or_refuse,
    is_loopback,
    refuse_exposure,
    tokens_exist,
)
from gantry.tokens import create_token


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "", "127.0.0.2"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.4", "example.org"])
def test_other_addresses_are_exposed(host: str) -> None:
    assert not is_loopback(host)


def test_an_exposed_server_without_tokens_is_refused_with_the_fix() -> None:
    with pytest.raises(StartupRefused, match="gantry token create --scope admin NAME"):
        refuse_exposure("0.0.0.0", has_tokens=False)
    refuse_exposure("0.0.0.0", has_tokens=True)
    refuse_exposure("127.0.0.1", has_tokens=False)


def test_a_malformed_devices_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text("[[devices]\n")
    with pytest.raises(StartupRefused, match="not valid TOML") as refused:
        devices_or_refuse(path, ["example_counter"])
    assert str(path) in str(refused.value)
    assert devices_or_refuse(None, []).devices == {}


def test_tokens_exist_reads_a_real_database_after_migrating_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gantry.db'}"
    assert not tokens_exist(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        create_token(conn, "ops", ["admin"])
    engine.dispose()
    assert tokens_exist(url)
