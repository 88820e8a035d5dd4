"""Fixtures of the browser tests: one Chromium per module, a watched page per test."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.browser.pages import CHROMIUM, CHROMIUM_ARGS, WAIT_MS, Watched
from tests.conftest import need

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    have = os.access(CHROMIUM, os.X_OK) and importlib.util.find_spec("playwright") is not None
    need(have, "needs chromium: run scripts/browser/install.sh (Debian, root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    # Closed before the server stops (fixtures end in reverse): open
    # EventSource streams would otherwise hold up its graceful shutdown.
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    seen = Watched(page)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on(
        "request",
        lambda request: seen.posts.append(request.url) if request.method == "POST" else None,
    )
    page.on("pageerror", lambda error: seen.page_errors.append(str(error)))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.console_errors.append(message.text)

    page.on("console", console)
    yield seen
    context.close()
