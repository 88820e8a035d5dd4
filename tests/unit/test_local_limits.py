"""Options and config of the local backend: parsing, limits, messages that say the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from gantry.backends.base import BackendContext, BackendError, StatusReport
from gantry.backends.local import LocalBackend
from gantry.backends.local.limits import Limits, Request, total_memory

GIB = 1 << 30


def _ignore(ref: str, report: StatusReport) -> None:
    pass


def backend(tmp_path: Path, **config: str) -> LocalBackend:
    return LocalBackend(BackendContext("local", tmp_path, config, _ignore))


def test_option_defaults_are_gwfs() -> None:
    assert LocalBackend.option_defaults == {"cores": 1, "memory": None, "walltime": None}


def test_request_parses_gwf_formats() -> None:
    request = Request.from_options({"cores": "4", "memory": "2g", "walltime": "1-00:00:30"})
    assert request == Request(cores=4, memory=2 * GIB, walltime=86430)


def test_request_defaults_when_options_are_missing_or_none() -> None:
    assert Request.from_options({}) == Request(cores=1, memory=0, walltime=None)
    assert Request.from_options({"cores": None, "memory": None}) == Request(1, 0, None)


def test_validate_options_normalises(tmp_path: Path) -> None:
    local = backend(tmp_path, max_cores="8", max_memory="16g")
    options = local.validate_options({"cores": "2", "memory": "1536m", "walltime": "90"})
    assert options == {"cores": 2, "memory": "1536M", "walltime": "01:30:00"}
    # The normal form parses back to itself.
    assert local.validate_options(options) == options


def test_validate_options_keeps_unset_options(tmp_path: Path) -> None:
    local = backend(tmp_path, max_cores="2", max_memory="1g")
    assert local.validate_options({"cores": 1, "memory": None, "walltime": None}) == {
        "cores": 1,
        "memory": None,
        "walltime": None,
    }


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"cores": "many"}, ["cores", "whole number"]),
        ({"cores": 0}, ["cores", "1 to"]),
        ({"memory": "lots"}, ["memory", "'4g'"]),
        ({"walltime": "1:99:00"}, ["walltime", "HH:MM:SS"]),
    ],
)
def test_bad_option_values_name_the_option_and_the_form(
    tmp_path: Path, options: dict[str, object], words: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        backend(tmp_path, max_cores="4", max_memory="4g").validate_options(options)
    for word in words:
        assert word in str(info.value)


def test_more_cores_than_the_limit_says_how_to_raise_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        backend(tmp_path, max_cores="2", max_memory="4g").validate_options({"cores": 3})
    message = str(info.value)
    assert "cores 3" in message and "limit of 2" in message
    assert "gantry config set backend.local.max_cores 3" in message


def test_more_memory_than_the_limit_says_how_to_raise_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        backend(tmp_path, max_cores="2", max_memory="1g").validate_options({"memory": "2g"})
    message = str(info.value)
    assert "memory 2048M" in message and "1024M" in message
    assert "gantry config set backend.local.max_memory 2048M" in message


def test_limits_default_to_this_machine() -> None:
    limits = Limits.from_config({})
    assert limits.max_cores >= 1
    assert limits.max_memory == total_memory() > 0
    assert limits.kill_grace == 5.0


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_cores", "lots"), ("max_cores", "0"), ("max_memory", "1 bucket"), ("kill_grace", "-1")],
)
def test_bad_config_names_the_key_and_the_fix(key: str, value: str) -> None:
    with pytest.raises(BackendError) as info:
        Limits.from_config({key: value})
    assert f"backend.local.{key}" in str(info.value)
    assert f"gantry config set backend.local.{key}" in str(info.value)


async def test_bad_config_makes_health_say_so(tmp_path: Path) -> None:
    healthy, why = await backend(tmp_path, max_cores="zero").health()
    assert not healthy
    assert "backend.local.max_cores" in why


def test_total_memory_reads_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        2048 kB\nMemFree:         1024 kB\n")
    assert total_memory(meminfo) == 2048 * 1024


def test_total_memory_without_meminfo_asks_the_system(tmp_path: Path) -> None:
    assert total_memory(tmp_path / "missing") > 0


def test_constructing_the_backend_touches_nothing(tmp_path: Path) -> None:
    backend(tmp_path / "data", max_cores="nonsense")
    assert not (tmp_path / "data").exists()
