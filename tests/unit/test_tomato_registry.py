"""Resolving tomato driver names, and every way a tomato driver can be unusable."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gantry.drivers.registry import DriverRegistry, DriverUnavailable
from gantry.drivers.tomato_host import TomatoDriver, is_tomato_name, module_name


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for throw-away ``tomato_*`` modules."""
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("tomato_gantry_test")]:
        del sys.modules[name]


def write(folder: Path, name: str, source: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    return path


@pytest.mark.parametrize(
    "name", ["tomato:example_counter", "tomato-example-counter", "tomato_example_counter"]
)
def test_every_spelling_resolves_to_the_adapter_of_the_installed_package(name: str) -> None:
    registry = DriverRegistry()
    assert is_tomato_name(name) and module_name(name) == "tomato_example_counter"
    assert name in registry.names()
    cls = registry.get(name)
    assert issubclass(cls, TomatoDriver)
    assert (cls.tomato_version, cls.tomato_module) == ("2.1", "tomato_example_counter")


def test_discovery_lists_installed_tomato_drivers_beside_native_ones() -> None:
    names = DriverRegistry.discover().names()
    assert {"example_counter", "tomato:example_counter", "tomato:example_trig"} <= set(names)
    assert "tomato:bronkhorst" in names


def test_an_interface_2_0_driver_is_accepted(modules: Path) -> None:
    write(
        modules,
        "tomato_gantry_test_old",
        """
        from tomato.driverinterface_2_0 import ModelInterface

        class DriverInterface(ModelInterface):
            def DeviceFactory(self, key, **kwargs):
                raise RuntimeError("no device")
        """,
    )
    cls = DriverRegistry().get("tomato:gantry_test_old")
    assert cls.tomato_version == "2.0"


def test_a_module_without_driverinterface_is_recorded_with_its_file_and_the_fix(
    modules: Path,
) -> None:
    path = write(modules, "tomato_gantry_test_empty", "VALUE = 1\n")
    registry = DriverRegistry()
    with pytest.raises(DriverUnavailable) as err:
        registry.get("tomato:gantry_test_empty")
    message = str(err.value)
    assert "'tomato:gantry_test_empty'" in message and str(path) in message
    assert "has no DriverInterface class" in message and "exposes `DriverInterface`" in message
    assert registry.broken() == {"tomato:gantry_test_empty": message.split("failed to load: ")[1]}


def test_an_unsupported_interface_version_names_the_versions_gantry_drives(
    modules: Path,
) -> None:
    path = write(
        modules,
        "tomato_gantry_test_future",
        """
        class ModelInterface:  # like tomato 3.0's driverinterface_3_0
            version = "3.0"

        class DriverInterface(ModelInterface):
            pass
        """,
    )
    with pytest.raises(DriverUnavailable) as err:
        DriverRegistry().get("tomato-gantry-test-future")
    message = str(err.value)
    assert str(path) in message and "interface version gantry does not drive" in message
    assert "tomato.driverinterface_2_1 (2.1)" in message and "'tomato==2.2'" in message


def test_a_driver_whose_import_fails_is_recorded_and_hides_no_other(modules: Path) -> None:
    write(modules, "tomato_gantry_test_crash", "raise ImportError('vendor DLL missing')\n")
    registry = DriverRegistry()
    with pytest.raises(DriverUnavailable, match="vendor DLL missing"):
        registry.get("tomato:gantry_test_crash")
    assert issubclass(registry.get("tomato:example_counter"), TomatoDriver)
    assert list(registry.broken()) == ["tomato:gantry_test_crash"]


def test_an_uninstalled_package_says_what_to_install() -> None:
    with pytest.raises(DriverUnavailable) as err:
        DriverRegistry().get("tomato:gantry_not_installed")
    assert "pip install tomato-gantry-not-installed 'tomato==2.2'" in str(err.value)
    assert "correct the driver name in the devices file" in str(err.value)


def test_a_name_that_is_not_tomatos_stays_unknown() -> None:
    registry = DriverRegistry()
    assert "tomatoes" not in registry.names() and not is_tomato_name("tomato:")
    with pytest.raises(DriverUnavailable, match="no driver named 'tomatoes'"):
        registry.get("tomatoes")
