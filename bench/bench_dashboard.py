"""The dashboard under load, in headless Chromium against a real server (issue #12).

Targets:

1. Streaming: one instrument job on a pipeline of ``--components`` (50)
   example_counter components, each sampling every ``--interval`` (10 ms:
   100 Hz, 5,000 samples/s in all), its panel open with a plot per role.
   Over a ``--window`` (20 s) once every role has data:
   - the plot keeps up: lag = the page's clock minus the newest sample drawn,
     on the charts on screen, p95 <= 1 s, median of ``--stream-rounds`` (3).
     Reported beside it: the newest sample received (every role), and the
     same stream read by a plain Python client in the same run (the server's
     share of the lag);
   - the page's main thread busy <= 50 %: Chromium's own task time
     (``Performance.getMetrics`` TaskDuration, what the Performance panel
     shows) over wall time; long tasks (PerformanceObserver ``longtask``) are
     reported beside it.
2. First paint: ``/dashboard/`` with 1M jobs in the database (bench_million's
   cached fill, reused): first-contentful-paint <= 300 ms, median of
   ``--rounds`` cold loads (a new browser context each); also the time until
   the jobs table shows its first row. The same on an empty database, loads
   alternating between the two servers, is the same-run baseline.

    .venv/bin/python bench/bench_dashboard.py [--components 50] [--interval 0.01]
        [--window 20] [--stream-rounds 3] [--rounds 5] [--jobs 1000000] [--only stream|paint]

Needs Chromium and Playwright (scripts/browser/install.sh).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_million import cached_db
from common import (
    ROOT,
    Server,
    add_nice_arg,
    check,
    finish,
    percentile,
    scratch_dir,
    start_results,
)

# The browser tests' Chromium, with the same flags.
sys.path.insert(0, str(ROOT))
from tests.browser.pages import CHROMIUM, CHROMIUM_ARGS

API = "/api/v1"
LAG_TARGET_S = 1.0
BUSY_TARGET = 0.5
PAINT_TARGET_MS = 300.0

# Before any page script: long tasks, and when the jobs table got its first row.
PROBES = """
window.__bench = { longTasks: 0, longMs: 0, firstRow: null };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__bench.longTasks += 1;
    window.__bench.longMs += entry.duration;
  }
}).observe({ type: "longtask", buffered: true });
new MutationObserver((changes, observer) => {
  if (document.querySelector("#jobs-body tr[data-id]")) {
    window.__bench.firstRow = performance.now();
    observer.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""


# Milliseconds since navigation: first contentful paint, the jobs table's first
# row, and when the page and its stylesheet had arrived (what the paint waits for).
TIMES_JS = """() => {
  const css = performance.getEntriesByType("resource").find((r) => r.name.endsWith("/app.css"));
  return {
    fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime,
    table: window.__bench.firstRow,
    document: performance.getEntriesByType("navigation")[0].responseEnd,
    css: css ? css.responseEnd : null,
  };
}"""


def devices_toml(components: int) -> str:
    channels = ", ".join(f'"{i}"' for i in range(components))
    members = ", ".join(
        f'{{ role = "c{i:02d}", device = "counter", channel = "{i}" }}' for i in range(components)
    )
    return (
        f'[[devices]]\nname = "counter"\ndriver = "example_counter"\naddress = "bench"\n'
        f"channels = [{channels}]\n\n"
        f'[[pipelines]]\nname = "pip-all"\ncomponents = [{members}]\n'
    )


def launch(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


# --- 1. streaming ------------------------------------------------------------------


def task_seconds(cdp: Any) -> float:
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


class PlainReader(threading.Thread):
    """The same data stream read by a plain client: the server's share of the lag."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.newest: dict[str, float] = {}  # role -> uts of its newest sample received

    def run(self) -> None:
        with httpx.stream("GET", self.url, timeout=None) as response:
            for line in response.iter_lines():
                if line.startswith('data: {"role"'):
                    page = json.loads(line[6:])
                    if page["samples"]:
                        self.newest[page["role"]] = page["samples"][-1]["uts"]


def stream_round(root: Path, args: argparse.Namespace, number: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    devices = root / "devices.toml"
    devices.write_text(devices_toml(args.components))
    env = {"GANTRY_DEVICES_FILE": str(devices)}
    server = Server.gantry(root / f"stream-{number}", env=env, label="gantry")
    duration = args.warmup + args.window + 5
    method = [
        {
            "component_role": f"c{i:02d}",
            "technique_name": "count",
            "max_duration": duration,
            "sampling_interval": args.interval,
        }
        for i in range(args.components)
    ]
    with server, httpx.Client(base_url=server.base_url, timeout=30) as api, sync_playwright() as pw:
        api.post(f"{API}/pipelines/pip-all/load", json={"sample": "bench"}).raise_for_status()
        api.post(f"{API}/pipelines/pip-all/ready").raise_for_status()
        browser = launch(pw)
        page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
        page.add_init_script(PROBES)
        made = api.post(
            f"{API}/jobs",
            json={"name": "stream", "payload": {"sample": {"name": "bench"}, "method": method}},
        )
        made.raise_for_status()
        job = made.json()["id"]
        plain = PlainReader(server.url(f"{API}/jobs/{job}/data?follow=true"))
        plain.start()
        page.goto(server.url(f"/dashboard/#/jobs/{job}"))
        # Every role has a chart with data: the steady state.
        page.wait_for_function(
            "(n) => window.gantryPlotStats().filter((r) => r.received > 0).length >= n",
            arg=args.components,
            timeout=60_000,
        )
        # As someone watching would: the plots scrolled into the panel's view.
        page.locator("#plots").scroll_into_view_if_needed()
        time.sleep(args.warmup)
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        long_before = page.evaluate("({...window.__bench})")
        busy_before, wall_before = task_seconds(cdp), time.perf_counter()
        drawn: list[float] = []
        received: list[float] = []
        plain_lags: list[float] = []
        visible: list[int] = []
        end = time.perf_counter() + args.window
        while time.perf_counter() < end:
            look = page.evaluate("({ now: Date.now() / 1000, roles: window.gantryPlotStats() })")
            now = time.time()
            on_screen = [r for r in look["roles"] if r["visible"] and r["drawnUts"]]
            visible.append(len(on_screen))
            drawn += [look["now"] - r["drawnUts"] for r in on_screen]
            received += [look["now"] - r["lastUts"] for r in look["roles"] if r["lastUts"]]
            plain_lags += [now - uts for uts in list(plain.newest.values())]
            time.sleep(0.25)
        busy = (task_seconds(cdp) - busy_before) / (time.perf_counter() - wall_before)
        long_after = page.evaluate("({...window.__bench})")
        stats = page.evaluate("window.gantryPlotStats()")
        browser.close()
        api.post(f"{API}/jobs/{job}/cancel")
        plain.join(timeout=30)
    r = {
        "samples_received": sum(r["received"] for r in stats),
        "charts_on_screen": statistics.median(visible),
        "drawn_lag_p50_s": statistics.median(drawn),
        "drawn_lag_p95_s": percentile(drawn, 95),
        "drawn_lag_max_s": max(drawn),
        "received_lag_p50_s": statistics.median(received),
        "received_lag_p95_s": percentile(received, 95),
        "plain_client_lag_p50_s": statistics.median(plain_lags),
        "plain_client_lag_p95_s": percentile(plain_lags, 95),
        "main_thread_busy": busy,
        "long_tasks": long_after["longTasks"] - long_before["longTasks"],
        "long_task_ms": long_after["longMs"] - long_before["longMs"],
    }
    print(
        f"  round {number}: {r['samples_received']:,} samples in the page, "
        f"{r['charts_on_screen']:.0f} charts on screen; lag p50/p95: drawn "
        f"{r['drawn_lag_p50_s']:.2f}/{r['drawn_lag_p95_s']:.2f} s, received "
        f"{r['received_lag_p50_s']:.2f}/{r['received_lag_p95_s']:.2f} s, plain client "
        f"{r['plain_client_lag_p50_s']:.2f}/{r['plain_client_lag_p95_s']:.2f} s; "
        f"main thread busy {busy:.0%}, {r['long_tasks']} long tasks "
        f"({r['long_task_ms']:.0f} ms)"
    )
    return r


def bench_stream(root: Path, args: argparse.Namespace) -> tuple[dict[str, Any], list[Any]]:
    rounds = [stream_round(root, args, n) for n in range(1, args.stream_rounds + 1)]
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    lag, busy = median["drawn_lag_p95_s"], median["main_thread_busy"]
    print(
        f"  median of {len(rounds)} rounds: lag p95 drawn {lag:.2f} s (plain client "
        f"{median['plain_client_lag_p95_s']:.2f} s), main thread busy {busy:.0%}"
    )
    checks = [
        check(
            f"plot lag (p95, charts on screen; median of {len(rounds)})",
            f"{lag:.2f} s (a plain SSE client, same run: {median['plain_client_lag_p95_s']:.2f} s)",
            f"<= {LAG_TARGET_S} s",
            lag <= LAG_TARGET_S,
        ),
        check(
            f"main thread busy (median of {len(rounds)})",
            f"{busy:.0%}",
            f"<= {BUSY_TARGET:.0%}",
            busy <= BUSY_TARGET,
        ),
    ]
    return {"rounds": rounds, "median": median}, checks


# --- 2. first paint -------------------------------------------------------------------


def load_once(browser: Any, server: Server) -> dict[str, Any]:
    """One cold load of /dashboard/ in a new context: TIMES_JS's figures."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.add_init_script(PROBES)
    page.goto(server.url("/dashboard/"))
    page.wait_for_function("() => window.__bench.firstRow !== null", timeout=30_000)
    got: dict[str, Any] = page.evaluate(TIMES_JS)
    context.close()
    return got


def bench_paint(root: Path, args: argparse.Namespace) -> tuple[dict[str, Any], list[Any]]:
    from playwright.sync_api import sync_playwright

    source, _ = cached_db(args.cache_dir, args.jobs, refill=False)
    servers: dict[str, Server] = {}
    for label in ("empty", "million"):
        (root / label).mkdir()
        servers[label] = Server.gantry(root / label, label=f"gantry-{label}")
    shutil.copyfile(source, root / "million" / "gantry.db")
    loads: dict[str, list[dict[str, Any]]] = {label: [] for label in servers}
    with servers["empty"], servers["million"], sync_playwright() as pw:
        # One job, so that the empty database's table has a row to wait for.
        made = httpx.post(servers["empty"].url(f"{API}/jobs"), json={"spec": "true"})
        made.raise_for_status()
        browser = launch(pw)
        # Alternating (and which goes first), so both databases see the same
        # machine; round 0 warms up.
        for number in range(args.rounds + 1):
            order = list(servers.items())
            for label, server in order[::-1] if number % 2 else order:
                got = load_once(browser, server)
                if number:
                    loads[label].append(got)
        browser.close()
    results: dict[str, Any] = {}
    for label, rows in loads.items():
        r = {key: [row[key] for row in rows] for key in rows[0]}
        r["median_ms"] = {key: statistics.median(values) for key, values in r.items()}
        results[label] = r
        m = r["median_ms"]
        print(
            f"  {label:8s} first contentful paint median {m['fcp']:.0f} ms "
            f"({', '.join(f'{v:.0f}' for v in r['fcp'])}); jobs table {m['table']:.0f} ms; "
            f"the page arrived at {m['document']:.0f} ms, its stylesheet at {m['css']:.0f} ms"
        )
    fcp = results["million"]["median_ms"]["fcp"]
    checks = [
        check(
            f"first paint, {args.jobs:,} jobs (median of {args.rounds})",
            f"{fcp:.0f} ms (empty database, same run: "
            f"{results['empty']['median_ms']['fcp']:.0f} ms)",
            f"<= {PAINT_TARGET_MS:.0f} ms",
            fcp <= PAINT_TARGET_MS,
        )
    ]
    return results, checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=50)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=5, help="first-paint loads")
    parser.add_argument("--stream-rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gantry-bench",
    )
    parser.add_argument("--only", choices=["stream", "paint"])
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    add_nice_arg(parser)
    args = parser.parse_args()
    results = start_results(args)
    checks: list[Any] = []
    with scratch_dir("gantry-bench-dashboard-", keep=args.keep) as root:
        if args.only in (None, "stream"):
            print(f"\n== 1. {args.components} components at {1 / args.interval:.0f} Hz, panel open")
            results["stream"], more = bench_stream(root, args)
            checks += more
        if args.only in (None, "paint"):
            print(f"\n== 2. first paint with {args.jobs:,} jobs")
            results["paint"], more = bench_paint(root, args)
            checks += more
    finish("bench_dashboard", results, checks)


if __name__ == "__main__":
    main()
