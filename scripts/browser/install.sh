#!/usr/bin/env bash
# Install what the dashboard's browser tests (tests/browser) need: Debian's
# chromium and chromium-driver (apt, as root), and the Python driver
# playwright in .venv. Playwright drives /usr/bin/chromium; its own browser
# download does not work on these machines, so `playwright install` is never
# run. A no-op when everything is present.
set -euo pipefail
cd "$(dirname "$0")/../.."

packages=(chromium chromium-driver)
start=$SECONDS

if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  echo "chromium present: $(dpkg-query -W -f '${Version}' chromium 2>/dev/null || echo unknown version)"
else
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "chromium missing: run this script as root on Debian" >&2
    exit 1
  fi
  echo "==> apt-get update"
  apt-get update -qq
  echo "==> apt-get install ${packages[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
  command -v chromium >/dev/null || { echo "still missing: chromium" >&2; exit 1; }
fi

python=.venv/bin/python
if [ ! -x "$python" ]; then
  echo "no .venv: run scripts/setup-venv test first" >&2
  exit 1
fi
if "$python" -c 'import playwright.sync_api' 2>/dev/null; then
  echo "playwright present in .venv"
else
  echo "==> pip install playwright into .venv"
  "$python" -m pip install --quiet "playwright>=1.45"
fi
echo "browser test tools ready in $((SECONDS - start)) s"
