"""Driver discovery: a broken driver is recorded, raises only when asked for."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from gantry.drivers.example_counter import DriverInterface as Counter
from gantry.drivers.psutil_driver import DriverInterface as Psutil
from gantry.drivers.registry import GROUP, DriverRegistry, DriverUnavailable


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=GROUP)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DriverRegistry:
    (tmp_path / "gantry_test_vendor_driver.py").write_text(
        "raise RuntimeError('vendor DLL missing')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return DriverRegistry.discover(
        [
            ep("example_counter", "gantry.drivers.example_counter"),
            ep("psutil", "gantry.drivers.psutil_driver:DriverInterface"),
            ep("vendor", "gantry_test_vendor_driver"),
            ep("missing", "gantry_no_such_package"),
            ep("not_a_driver", "json"),
            ep("abstract", "gantry.drivers.interface_2_0:ModelInterface"),
        ]
    )


def test_working_drivers_load_from_a_module_or_a_class(registry: DriverRegistry) -> None:
    assert registry.get("example_counter") is Counter
    assert registry.get("psutil") is Psutil
    assert registry.names() == [
        "abstract",
        "example_counter",
        "missing",
        "not_a_driver",
        "psutil",
        "vendor",
    ]


def test_broken_drivers_are_recorded_with_their_error(registry: DriverRegistry) -> None:
    broken = registry.broken()
    assert set(broken) == {"vendor", "missing", "not_a_driver", "abstract"}
    assert broken["vendor"] == "RuntimeError: vendor DLL missing"
    assert "ModuleNotFoundError" in broken["missing"]
    assert "no DriverInterface" in broken["not_a_driver"]
    assert "does not implement DeviceFactory" in broken["abstract"]


def test_a_broken_driver_raises_only_when_asked_for(registry: DriverRegistry) -> None:
    with pytest.raises(DriverUnavailable, match=r"'vendor' .* failed to load: RuntimeError"):
        registry.get("vendor")
    with pytest.raises(DriverUnavailable, match=r"no driver named 'nope'; installed: abstract"):
        registry.get("nope")


async def test_create_builds_an_instance_with_settings(registry: DriverRegistry) -> None:
    driver = registry.create("psutil", {"disk_path": "/"})
    assert isinstance(driver, Psutil) and driver.settings == {"disk_path": "/"}
    assert (await driver.cmp_register("localhost", "disk")).success


def test_the_built_in_drivers_are_installed_entry_points() -> None:
    registry = DriverRegistry.discover()
    missing = {"example_counter", "psutil"} - set(registry.names())
    assert not missing, (
        f"entry points {sorted(missing)} missing from group {GROUP!r}: declare them in "
        "pyproject.toml and reinstall (pip install -e .)"
    )
    assert registry.get("example_counter") is Counter
    assert registry.get("psutil") is Psutil
