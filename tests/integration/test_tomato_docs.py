"""docs/migrate-from-tomato.md: its examples run, and its code blocks are excerpts of them."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from gantry.settings import Settings
from tests.integration.instruments import instrument_app

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples" / "tomato"
FILES = ["devices.toml", "payload.toml", "run_counter.py", "use_tomato_driver.py"]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"tomato_docs_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


async def test_the_migration_example_runs_its_payload_on_the_devices_file(
    settings: Settings,
) -> None:
    run = load("run_counter").run
    async with instrument_app(settings, devices_file=EXAMPLES / "devices.toml") as (client, _):
        rows = await run(client)
    counting = [r for r in rows if r["task"] == "0"]
    random = [r for r in rows if r["task"] == "1"]
    assert 8 <= len(counting) <= 11 and 8 <= len(random) <= 11
    assert {r["task_name"] for r in counting} == {"counting"}
    assert {(r["param"], r["choice"]) for r in counting} == {("0.5", "blue")}
    assert all(1.0 <= float(r["val"]) <= 5.0 for r in random)


async def test_the_contract_example_drives_the_unmodified_package() -> None:
    samples = await load("use_tomato_driver").main()
    assert 8 <= len(samples) <= 11
    assert samples[0].values["param"] == 0.5 and samples[0].units == {"param": "second"}
    assert len({s.task_id for s in samples}) == 1


def test_every_code_block_is_an_excerpt_of_the_examples() -> None:
    page = (DOCS / "migrate-from-tomato.md").read_text()
    blocks = re.findall(r"```(?:python|toml)\n(.*?)```", page, flags=re.DOTALL)
    sources = [(EXAMPLES / name).read_text() for name in FILES]
    assert len(blocks) >= 4
    for block in blocks:
        assert any(block in source for source in sources), f"not in the examples:\n{block}"
