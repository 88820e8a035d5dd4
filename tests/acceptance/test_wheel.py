"""A wheel built from the repo installs into a clean venv under one import
name and serves, migrations included: nothing of the source tree is needed."""

from __future__ import annotations

import ast
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest

from tests.acceptance.server import ServerProcess, clean_env

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"app": "gantry", "backends": "gantry/backends", "drivers": "gantry/drivers"}


def _package_dirs() -> set[str]:
    """Every package folder of the source tree, as its path inside the wheel."""
    found = set()
    for folder, inside in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(f"{inside}/{rel}".removesuffix("/."))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("gantry-*.whl")
    return built


def test_the_wheel_holds_one_top_level_name_and_everything_it_needs(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert top == {
        "gantry",
        wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info",
    }
    folders = {name.rsplit("/", 1)[0] for name in names}
    assert _package_dirs() <= folders, "a package folder is missing from pyproject's packages"
    migrations = [n for n in names if n.startswith("gantry/migrations/versions/")]
    assert len(migrations) == len(list((ROOT / "alembic" / "versions").glob("*.py")))
    for needed in (
        "gantry/migrations/env.py",
        "gantry/migrations/script.py.mako",
        "gantry/dashboard/static/index.html",
        "gantry/dashboard/static/vendor/uplot/uPlot.esm.js",
        "gantry/dashboard/static/vendor/uplot/LICENSE",
        "gantry/instruments/demo-devices.toml",
        "gantry/py.typed",
    ):
        assert needed in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))
    )
    assert b"gantry.backends.local:LocalBackend" in entry_points
    assert b"gantry.cli.main:main" in entry_points


def test_the_wheel_serves_from_a_clean_venv(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    started = time.monotonic()
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        timeout=600,
        env=clean_env(),
    )
    print(f"wheel and dependencies installed in {time.monotonic() - started:.0f} s")
    # Run from a folder outside the repo: only the installed package is importable.
    site = tmp_path / "elsewhere"
    site.mkdir()
    probe = subprocess.run(
        [
            str(python),
            "-c",
            "import gantry.jobs.engine, gantry.backends.base, "
            "gantry.drivers.interface_2_0; import importlib.util as u; "
            "print([m for m in ('app', 'backends', 'drivers') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        cwd=site,
        check=True,
    )
    assert probe.stdout.strip() == "[]"
    server = ServerProcess(site, gantry=str(env_dir / "bin" / "gantry"))
    server.start()
    try:
        with server.client() as client:
            job = client.post("/api/v1/jobs", json={"name": "hello", "spec": "echo hi"}).json()
            deadline = time.monotonic() + 30
            while (state := client.get(f"/api/v1/jobs/{job['id']}").json()["state"]) not in (
                "completed",
                "failed",
            ):
                assert time.monotonic() < deadline, f"job still {state}"
                time.sleep(0.1)
            assert state == "completed"
            logs = client.get(f"/api/v1/jobs/{job['id']}/logs", params={"stream": "stdout"})
            assert "hi" in logs.text
    finally:
        assert server.stop() in (0, -15)  # uvicorn ends by the SIGTERM it was sent
    revision = subprocess.run(
        [str(env_dir / "bin" / "gantry"), "db", "current", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        cwd=site,
        env=clean_env(),
    )
    assert revision.returncode == 0, revision.stderr
    assert revision.stdout.strip() == _head_revision()


def _head_revision() -> str:
    """The newest migration's id (the one no other migration revises)."""
    ids, downs = set(), set()
    for script in (ROOT / "alembic" / "versions").glob("*.py"):
        tree = ast.parse(script.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(
                node.value, ast.Constant
            ):
                target = node.targets[0] if isinstance(node, ast.Assign) else node.target
                if isinstance(target, ast.Name) and target.id == "revision":
                    ids.add(node.value.value)
                if isinstance(target, ast.Name) and target.id == "down_revision":
                    downs.add(node.value.value)
    (head,) = ids - downs
    return str(head)
