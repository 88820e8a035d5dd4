"""The dashboard in a real headless Chromium against a real `gantry serve` process.

Playwright drives Debian's /usr/bin/chromium (its own browser download does
not work on these machines). Needs: scripts/browser/install.sh.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from gantry.dashboard.router import STATIC
from gantry.main import create_app
from gantry.settings import Settings
from tests.acceptance.server import GANTRY, ServerProcess, clean_env
from tests.browser.pages import ARTIFACTS, Watched, nav

if TYPE_CHECKING:
    from playwright.sync_api import Page

UPLOT = "vendor/uplot/uPlot.esm.js"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path)
    yield server
    server.stop()


def submit(page: Page, name: str, script: str, backend: str | None = "local") -> None:
    nav(page, "Submit")
    form = page.locator("#submit-form")
    form.get_by_label("Name").fill(name)
    if backend:
        # Wait until the choices came from GET /backends, then pick one.
        form.locator(f"select[name=backend] option[value={backend}]").wait_for(state="attached")
        form.get_by_label("Backend").select_option(backend)
    form.get_by_label("Script").fill(script)
    form.get_by_role("button", name="Submit job").click()


def cancel_open_job(page: Page) -> None:
    button = page.locator("#cancel-button")
    button.click()  # arms it: "Confirm cancel"
    button.click()


@pytest.mark.browser
def test_submit_follow_cancel_and_validation_live(server: ServerProcess, watched: Watched) -> None:
    from playwright.sync_api import expect

    page = watched.page
    server.start()
    page.goto(server.url + "/")
    assert urlsplit(page.url).path == "/dashboard/"
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    # Survives only if the page is never reloaded.
    page.evaluate("window.__sameDocument = true")

    submit(page, "hello_dash", "echo hello dashboard; echo '<b>not bold</b>'")
    row = page.locator("#jobs-body tr[data-id='1']")
    expect(row.locator(".badge")).to_have_text("completed")
    expect(row).to_contain_text("hello_dash")
    # The submit opened the job's panel: its log came through the logs SSE.
    expect(page).to_have_url(re.compile(r"#/jobs/1$"))
    expect(page.locator("#log")).to_contain_text("hello dashboard")
    expect(page.locator("#log-status")).to_contain_text("end of stdout")
    # User text is shown as text, never parsed as HTML.
    expect(page.locator("#log")).to_contain_text("<b>not bold</b>")
    expect(page.locator("#detail-spec")).to_contain_text("<b>not bold</b>")
    expect(page.locator("#detail b")).to_have_count(0)
    exit_code = page.locator(
        "xpath=//dl[@id='detail-fields']/dt[.='Exit code']/following-sibling::dd[1]"
    )
    expect(exit_code).to_have_text("0")

    # Cancel on an ended job: the API's 409 message.
    cancel_open_job(page)
    expect(page.locator("#cancel-message")).to_contain_text("already ended")

    submit(page, "sleeper", "sleep 30")
    sleeper = page.locator("#jobs-body tr[data-id='2']")
    expect(sleeper.locator(".badge")).to_have_text("running")
    expect(page.locator("#detail-title")).to_contain_text("sleeper")
    cancel_open_job(page)
    expect(sleeper.locator(".badge")).to_have_text("cancelled")
    expect(page.locator("#detail-sub")).to_contain_text("cancelled by request")
    expect(page.locator(".counter.state-cancelled .count")).to_have_text("1")
    expect(page.locator(".counter.state-completed .count")).to_have_text("1")

    # A bad submission shows the API's own 422 messages next to the form.
    submit(page, "1bad", "   ", backend=None)
    errors = page.locator("#submit-errors")
    expect(errors).to_contain_text("'1bad' is invalid: use a letter or underscore")
    expect(errors).to_contain_text("spec is empty")
    expect(page.locator("#submit-form [name=name]")).to_have_attribute("aria-invalid", "true")

    # Filters go to the API: a name prefix that matches one job.
    nav(page, "Jobs")
    page.locator("#filters").get_by_label("Name prefix").fill("sleep")
    expect(page.locator("#jobs-body tr")).to_have_count(1)
    page.locator("#filters").get_by_role("button", name="Clear").click()
    expect(page.locator("#jobs-body tr")).to_have_count(2)

    page.locator("#jobs-body tr[data-id='1'] td.name").click()
    expect(page.locator("#log")).to_contain_text("hello dashboard")
    assert page.evaluate("window.__sameDocument") is True
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
    watched.assert_clean()


@pytest.mark.browser
def test_token_prompt_accepts_a_token_and_lists_jobs_page_by_page(
    server: ServerProcess, watched: Watched
) -> None:
    from playwright.sync_api import expect

    create = [GANTRY, "token", "create", "--scope", "submit", "dashboard"]
    made = subprocess.run(
        [*create, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=True,
    )
    token = made.stdout.strip()
    server.start()
    api = server.client(headers={"Authorization": f"Bearer {token}"})
    # More jobs than one page (50), held queued behind a gate: nothing runs but the gate.
    steps = [{"name": f"step_{i}", "spec": "true", "depends_on": ["gate"]} for i in range(55)]
    batch = api.post(
        "/api/v1/jobs/batch", json={"jobs": [{"name": "gate", "spec": "sleep 30"}, *steps]}
    )
    assert batch.status_code == 201, batch.text
    try:
        page = watched.page
        page.goto(server.url + "/dashboard/")
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("requires an API token")
        dialog.get_by_label("Token").fill(token)
        dialog.get_by_role("button", name="Save token").click()
        expect(dialog).to_be_hidden()
        rows = page.locator("#jobs-body tr")
        expect(rows).to_have_count(50)
        expect(page.locator("#jobs-body tr[data-id='56']")).to_contain_text("step_54")
        # The events stream authenticates with ?access_token=.
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        page.get_by_role("button", name="Older jobs").click()
        expect(rows).to_have_count(56)
        expect(page.locator("#jobs-body tr[data-id='1']")).to_contain_text("gate")
        expect(page.get_by_role("button", name="Older jobs")).to_be_hidden()

        # Remembered in localStorage: a reload does not ask again.
        page.reload()
        expect(rows).to_have_count(50)
        expect(dialog).to_be_hidden()
        assert page.evaluate("localStorage.getItem('gantry.token')") == token
    finally:
        api.post("/api/v1/jobs/1/cancel")  # the gate, and so its dependents
        api.close()
    watched.assert_clean()


# --- without a browser: what the server sends -----------------------------------------


def fetch_all(paths: list[str], headers: dict[str, str] | None = None) -> dict[str, httpx.Response]:
    """GET each path from the app in process (no lifespan: the page needs no engine)."""
    app = create_app(Settings(data_dir=Path("unused")))

    async def fetch() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gantry") as client:
            return {path: await client.get(path, headers=headers) for path in paths}

    # In a thread of its own: Playwright's sync API holds this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, fetch).result()


def test_dashboard_is_served_whole_and_offline() -> None:
    # Every file the page and its modules load, read from the package itself.
    index = (STATIC / "index.html").read_text()
    assets = set(re.findall(r'(?:src|href)="([\w./-]+\.(?:js|css|svg))"', index))
    for module in STATIC.glob("*.js"):
        # Static imports and dynamic import("./vendor/...") alike.
        imports = re.findall(r'(?:from |import\()"\./([\w./-]+\.js)"', module.read_text())
        assets |= set(imports) | set(re.findall(r'"(vendor/[\w./-]+\.css)"', module.read_text()))
    assert {"app.js", "app.css", "api.js", "jobs.js", UPLOT, "vendor/uplot/uPlot.min.css"} <= assets
    bad = [
        "/dashboard/..%2Frouter.py",
        "/dashboard/router.py",
        "/dashboard/.hidden.js",
        "/dashboard/vendor/../router.py",
        "/dashboard/vendor/uplot/LICENSE",
    ]
    got = fetch_all(["/", "/dashboard", "/dashboard/", *(f"/dashboard/{a}" for a in assets), *bad])

    for path in ("/", "/dashboard"):
        assert got[path].status_code == 307 and got[path].headers["location"] == "dashboard/"
    page = got["/dashboard/"]
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for name in assets:
        asset = got[f"/dashboard/{name}"]
        assert asset.status_code == 200, name
        kind = asset.headers["content-type"].split(";")[0]
        assert kind in ("text/javascript", "text/css", "image/svg+xml"), name
    for path in bad:
        assert got[path].status_code == 404, path
    # Nothing refers to another host: the dashboard works offline.
    for file in STATIC.iterdir():
        if file.suffix in (".html", ".js", ".css"):
            assert not re.search(r"https?://|//cdn", file.read_text()), file.name
    # The vendored chart library: pinned, with its licence; it loads nothing itself.
    vendor = STATIC / "vendor" / "uplot"
    assert "(v1.6.32)" in (vendor / "uPlot.esm.js").read_text()[:400]
    assert "MIT License" in (vendor / "LICENSE").read_text()
    code = (vendor / "uPlot.esm.js").read_text()
    assert not re.search(r"\b(fetch|XMLHttpRequest|importScripts)\(", code)


def test_an_unchanged_file_is_not_sent_again() -> None:
    first = fetch_all(["/dashboard/app.js"])["/dashboard/app.js"]
    etag = first.headers["etag"]
    again = fetch_all(["/dashboard/app.js"], {"If-None-Match": etag})["/dashboard/app.js"]
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert "script-src 'self'" in again.headers["content-security-policy"]
