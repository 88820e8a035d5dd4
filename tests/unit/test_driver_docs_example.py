"""docs/write-a-driver.md: its example driver runs, keeps the contract, and the
page's code blocks are verbatim excerpts of the example files."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples"
FILES = ["thermometer_driver.py", "use_thermometer.py", "check_thermometer.py"]


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield {name: importlib.import_module(name.removesuffix(".py")) for name in FILES}


async def test_the_tutorial_usage_runs(examples: dict[str, ModuleType]) -> None:
    samples = await examples["use_thermometer.py"].main()
    assert len(samples) == 10
    setpoints = [s.values["setpoint"] for s in samples]
    assert setpoints[0] == 25.0  # "25 degC" from the task params
    assert setpoints[-1] == pytest.approx(25 + 9 * 0.05)  # 0.5 K/s for 9 ticks of 0.1 s
    assert samples[0].units["temperature"] == "degC"


async def test_the_tutorial_driver_keeps_the_contract(examples: dict[str, ModuleType]) -> None:
    await examples["check_thermometer.py"].test_heater_keeps_the_driver_contract()


async def test_the_tutorial_driver_refuses_bad_units(examples: dict[str, ModuleType]) -> None:
    driver = examples["thermometer_driver.py"].DriverInterface()
    await driver.cmp_register("/dev/ttyUSB0", "zone1")
    reply = await driver.cmp_set_attr("/dev/ttyUSB0", "zone1", "ramp_rate", "5 kg")
    assert not reply.success and "'ramp_rate'" in reply.msg
    ok = await driver.cmp_set_attr("/dev/ttyUSB0", "zone1", "ramp_rate", "0.5 K/s")
    assert ok.data == pytest.approx(30.0)  # stored in the attr's units, K/min


def test_every_code_block_is_an_excerpt_of_the_examples() -> None:
    page = (DOCS / "write-a-driver.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    sources = [(EXAMPLES / name).read_text() for name in FILES]
    assert len(blocks) >= 8
    for block in blocks:
        assert any(block in source for source in sources), f"not in the examples:\n{block}"
