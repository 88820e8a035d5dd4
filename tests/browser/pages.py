"""What the browser tests share: Chromium's settings, a watched page, helpers."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Playwright adds --headless and a fresh temporary profile (--user-data-dir) itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(os.environ.get("GANTRY_BROWSER_ARTIFACTS", Path(__file__).parent / "artifacts"))
WAIT_MS = 15_000  # generous for a loaded CI machine; passing runs take well under it
# Chromium logs every non-2xx answer as a console error; these are the expected ones.
EXPECTED_HTTP_ERROR = re.compile(r"Failed to load resource: .* status of (401|409|422)\b")


@dataclass
class Watched:
    """What the page did besides what the test looks at."""

    page: Page
    requests: list[str] = field(default_factory=list)
    posts: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        foreign = [u for u in self.requests if urlsplit(u).hostname != "127.0.0.1"]
        assert not foreign, f"requests to other hosts: {foreign}"
        unexpected = [m for m in self.console_errors if not EXPECTED_HTTP_ERROR.search(m)]
        assert not unexpected, f"console errors: {unexpected}"
        assert not self.page_errors, f"uncaught errors: {self.page_errors}"


def nav(page: Page, view: str) -> None:
    page.get_by_role("navigation", name="Views").get_by_role("link", name=view).click()


# Decoded by Chromium itself: the distinct colours of a PNG, every 3rd pixel.
COLOURS_JS = """async (url) => {
  const img = new Image();
  img.src = url;
  await img.decode();
  const canvas = document.createElement("canvas");
  canvas.width = img.width;
  canvas.height = img.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const pixels = new Uint32Array(ctx.getImageData(0, 0, img.width, img.height).data.buffer);
  const seen = new Set();
  for (let i = 0; i < pixels.length; i += 3) seen.add(pixels[i]);
  return seen.size;
}"""


def screenshot(page: Page, path: Path) -> int:
    """Save a screenshot of the page at ``path``; return how many colours it has."""
    import base64

    path.parent.mkdir(parents=True, exist_ok=True)
    png = page.screenshot(path=str(path), full_page=True)
    blank = page.context.new_page()
    try:
        url = "data:image/png;base64," + base64.b64encode(png).decode()
        colours: int = blank.evaluate(COLOURS_JS, url)
    finally:
        blank.close()
    return colours
