"""The lab views in headless Chromium against a real `gantry serve` with the demo devices:
pipelines loaded and made ready from the page, a measurement submitted from the
page and plotted live, the form refusing a parameter outside its attr's limits,
an array job's tasks and accounting. A screenshot of each view is kept under the
test's temporary directory (and copied to tests/browser/artifacts/) and checked
not to be blank.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.server import GANTRY, ServerProcess, clean_env
from tests.browser.pages import ARTIFACTS, Watched, nav, screenshot

DEMO = Path(__file__).resolve().parents[2] / "app" / "instruments" / "demo-devices.toml"
# A screenshot of a view with content has many colours; a blank page has one or two.
MIN_COLOURS = 40

# What the page shows of the open job's counter plot, read in one go.
PLOT_JS = """() => {
  const count = document.querySelector("#plots figure[data-role=counter] .plot-count");
  return {
    points: count ? parseInt(count.textContent, 10) : 0,
    state: document.querySelector("#detail-sub .badge")?.textContent ?? "",
  };
}"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, GANTRY_DEVICES_FILE=str(DEMO))
    yield server
    server.stop()


def submit_token(server: ServerProcess) -> str:
    made = subprocess.run(
        [GANTRY, "token", "create", "--scope", "submit", "lab", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=True,
    )
    return made.stdout.strip()


def keep(watched: Watched, tmp_path: Path, name: str) -> None:
    """A screenshot in the test's temp dir, checked not blank, and copied to ARTIFACTS."""
    path = tmp_path / "screenshots" / f"{name}.png"
    colours = screenshot(watched.page, path)
    assert colours >= MIN_COLOURS, f"the {name} screenshot looks blank ({colours} colours)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, ARTIFACTS / f"lab-{name}.png")


@pytest.mark.browser
def test_pipeline_measure_live_plot_and_refused_parameter(
    server: ServerProcess, watched: Watched, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    token = submit_token(server)
    server.start()
    page = watched.page
    # The pipeline actions and the submit need the submit scope.
    page.context.add_init_script(f"localStorage.setItem('gantry.token', {json.dumps(token)})")
    page.goto(server.url + "/dashboard/#/pipelines")

    # Load a sample and mark the pipeline ready, from the page.
    row = page.locator("#pipelines-body tr[data-name='pip-counter-1']")
    row.get_by_label("Sample for pip-counter-1").fill("S1")
    row.get_by_role("button", name="Load").click()
    expect(row.locator("td.sample")).to_have_text("S1")
    expect(page.locator("#pipelines-message")).to_contain_text("pip-counter-1 holds S1")
    row.get_by_role("button", name="Mark ready").click()
    expect(row.locator("td.ready")).to_have_text("ready")
    keep(watched, tmp_path, "pipelines")

    # Devices: driver, address, capabilities and status attrs with their units.
    nav(page, "Devices")
    counter = page.locator("#components-body tr[data-component='counter/1']")
    expect(counter).to_contain_text("example_counter")
    expect(counter.locator("td.status")).to_contain_text("delay=0 s")
    expect(counter).to_contain_text("random")
    keep(watched, tmp_path, "devices")

    # Measure: a parameter outside the attr's limits is refused before sending.
    nav(page, "Measure")
    form = page.locator("#measure-form")
    form.locator("select[name=pipeline] option[value='pip-counter-1']").wait_for(state="attached")
    form.get_by_label("Pipeline").select_option("pip-counter-1")
    expect(form.get_by_label("Sample")).to_have_value("S1")
    delay = form.locator("[name='counter.param.delay']")
    delay.fill("20")
    posts_before = len(watched.posts)
    form.get_by_role("button", name="Submit measurement").click()
    errors = page.locator("#measure-errors")
    expect(errors).to_contain_text(
        "counter: delay: 20 s is above the maximum (the attr's limits: 0\N{EN DASH}10 s)"
    )
    expect(delay).to_have_attribute("aria-invalid", "true")
    assert len(watched.posts) == posts_before, "the refused form was sent"
    delay.fill("11000 ms")  # converted here: still above 10 s
    form.get_by_role("button", name="Submit measurement").click()
    expect(errors).to_contain_text("11000 ms is above the maximum")
    keep(watched, tmp_path, "measure-refused")

    # A valid one: submitted from the page, then followed in the job's panel.
    delay.fill("5 ms")
    form.locator("[name='counter.max_duration']").fill("5 s")
    form.locator("[name='counter.sampling_interval']").fill("100 ms")
    form.get_by_role("button", name="Submit measurement").click()
    expect(page).to_have_url(server.url + "/dashboard/#/jobs/1")
    figure = page.locator("#plots figure[data-role=counter]")
    expect(figure).to_be_visible()

    # The plot gains points while the job runs: two readings of the page.
    # Functions, not strings: the page's CSP allows no eval.
    more_than = f"(n) => ({PLOT_JS})().points > n"
    page.wait_for_function(more_than, arg=1)
    first: dict[str, Any] = page.evaluate(PLOT_JS)
    assert first["state"] == "running", first
    page.wait_for_function(more_than, arg=first["points"])
    later: dict[str, Any] = page.evaluate(PLOT_JS)
    assert later["state"] == "running" and later["points"] > first["points"], (first, later)

    # Units on the axes: the axis labels (the chart is a canvas; the figure says them).
    label = figure.get_attribute("aria-label") or ""
    assert "x time since the first sample [s]" in label, label
    assert "delay [s]" in label and "val, min, max [no unit]" in label, label
    expect(figure.locator(".u-legend")).to_contain_text("delay [s]")
    keep(watched, tmp_path, "job-running")

    # It completes; the plot then holds every stored sample, and the downloads work.
    expect(page.locator("#jobs-body tr[data-id='1'] .badge")).to_have_text("completed")
    expect(page.locator("#data-status")).to_contain_text("the job ended")
    api = server.client(headers={"Authorization": f"Bearer {token}"})
    stored = api.get("/api/v1/jobs/1/data", params={"limit": 100_000}).json()
    samples = stored["roles"][0]["samples"]
    assert len(samples) >= 40
    expect(figure.locator(".plot-count")).to_have_text(f"{len(samples)} points")
    downloads = page.locator("#data-downloads")
    for name in ("CSV", "JSON", "NetCDF", "RO-Crate"):
        expect(downloads.get_by_role("link", name=name)).to_be_visible()
    csv = httpx.get(downloads.get_by_role("link", name="CSV").get_attribute("href") or "")
    assert csv.status_code == 200 and csv.text.count("\n") == len(samples) + 1
    netcdf = httpx.get(downloads.get_by_role("link", name="NetCDF").get_attribute("href") or "")
    assert netcdf.status_code == 200 and netcdf.content[:3] == b"\x89HD"
    crate = httpx.get(downloads.get_by_role("link", name="RO-Crate").get_attribute("href") or "")
    assert crate.status_code == 200 and crate.content[:2] == b"PK", crate.text[:200]
    keep(watched, tmp_path, "job-completed")

    # The job ended: the pipeline keeps its sample and is not ready any more; eject it.
    nav(page, "Pipelines")
    expect(row.locator("td.ready")).to_have_text("not ready")
    expect(row.locator("td.sample")).to_have_text("S1")
    row.get_by_role("button", name="Eject").click()
    expect(row.locator("td.sample")).to_have_text("—")
    expect(row.get_by_label("Sample for pip-counter-1")).to_be_visible()
    api.close()
    watched.assert_clean()


@pytest.mark.browser
def test_array_job_panel_shows_task_counts_tasks_and_accounting(
    server: ServerProcess, watched: Watched, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    server.start()
    with server.client() as api:
        made = api.post(
            "/api/v1/jobs",
            json={"name": "sweep", "spec": "echo task $GANTRY_ARRAY_INDEX", "array": "0-3"},
        )
        assert made.status_code == 201, made.text
    page = watched.page
    page.goto(server.url + "/dashboard/#/jobs/1")
    expect(page.locator("#detail-sub .badge")).to_have_text("completed")
    section = page.locator("#detail-tasks")
    expect(section.locator("#tasks-summary")).to_have_text("0-3: 4 tasks")
    expect(section.locator(".counter[data-state=completed] .count")).to_have_text("4")
    expect(section.locator("#tasks-body tr")).to_have_count(4)
    expect(section.locator("#tasks-body tr[data-index='3']")).to_contain_text("completed")
    # Accounting: the local backend measured CPU and memory.
    fields = page.locator("#detail-fields")
    expect(fields).to_contain_text("user +")
    expect(fields.locator("xpath=dt[.='Peak memory']/following-sibling::dd[1]")).to_contain_text(
        "iB"
    )
    expect(page.locator("#detail-data")).to_be_hidden()
    # A task's row shows that task's own log.
    section.locator("#tasks-body tr[data-index='2']").click()
    expect(page.locator("#log")).to_have_text("task 2\n")
    expect(page.locator("#log-status")).to_contain_text("end of stdout of task 2")
    expect(section.locator("#tasks-body tr[data-index='2']")).to_have_class(re.compile("selected"))
    keep(watched, tmp_path, "array-job")
    watched.assert_clean()
