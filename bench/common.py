"""Shared pieces of the core benchmarks: servers, wrk, /proc, machine info.

Everything here stays on loopback and stops only the processes it started,
by their pid. A server listens on a free loopback port and is checked (through /proc) to
be the process holding it before it counts as up, so a benchmark never
measures someone else's dev server that took the port first.

    server = Server.gantry(data_dir)          # or Server.baseline(data_dir)
    with server:                               # starts, waits for /healthz
        sample = server.sample()               # RSS + CPU seconds from /proc
        result = run_wrk(server.url("/api/v1/jobs"), script=..., duration=10)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx

ROOT = Path(__file__).resolve().parent.parent
# The servers import gantry from here: GANTRY_BENCH_SOURCE=/path/to/a/copy runs
# the same benchmarks against another checkout (a scratch copy with a fix).
SOURCE = Path(os.environ.get("GANTRY_BENCH_SOURCE", ROOT)).resolve()
#: What the servers put on PYTHONPATH: nothing for this checkout (the editable
#: install maps ``gantry`` to it); for another, that checkout laid out as it
#: installs (``scripts/link-tree``), which comes before the editable install.
IMPORT_ROOT = None if SOURCE == ROOT else SOURCE / "build" / "bench-import"
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PYTHON = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Both servers run like `gantry serve` does in production: one worker, uvloop
# and httptools when installed (uvicorn's "auto"), no access log (gantry's own
# logging config silences uvicorn.access).
UVICORN_FLAGS = ["--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "5"]


# --- /proc -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One look at a process: wall clock, CPU seconds (all threads), RSS."""

    at: float
    cpu_s: float
    rss_mb: float
    threads: int

    def cpu_since(self, earlier: ProcSample) -> tuple[float, float]:
        """(CPU seconds used, cores busy on average) between two samples."""
        used = self.cpu_s - earlier.cpu_s
        wall = max(self.at - earlier.at, 1e-9)
        return used, used / wall


def proc_sample(pid: int) -> ProcSample:
    """CPU time (utime+stime of every thread) and RSS of ``pid`` from /proc."""
    at = time.perf_counter()
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # Field 2 (comm) may hold spaces and parentheses: split after its last ')'.
    rest = stat[stat.rindex(")") + 2 :].split()
    utime, stime, threads = int(rest[11]), int(rest[12]), int(rest[17])
    with open(f"/proc/{pid}/statm") as f:
        rss_pages = int(f.read().split()[1])
    return ProcSample(at, (utime + stime) / CLK_TCK, rss_pages * PAGE / 2**20, threads)


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the highest RSS the process ever had."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- servers -------------------------------------------------------------------


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it just after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port``.

    (uvicorn's ``--fd`` would avoid the question, but it takes any fd for an
    AF_UNIX socket and then never sets TCP_NODELAY: 40 ms delayed-ACK stalls.)
    """
    inodes = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return False
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return True
    return False


class ServerFailed(RuntimeError):
    pass


class PortTaken(ServerFailed):
    pass


class Server:
    """A uvicorn server in a subprocess on 127.0.0.1 (free port), stopped by its pid."""

    def __init__(
        self,
        app: str,
        *,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        factory: bool = False,
        cpus: Sequence[int] | None = None,
        health_path: str = "/healthz",
        label: str = "server",
        startup_timeout: float = 60.0,
    ) -> None:
        self.app = app
        self.data_dir = Path(data_dir)
        self.env = dict(env or {})
        self.factory = factory
        self.cpus = list(cpus) if cpus else None
        self.health_path = health_path
        self.label = label
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = self.data_dir / f"{label}.log"

    @classmethod
    def gantry(
        cls, data_dir: Path, *, env: Mapping[str, str] | None = None, **kwargs: Any
    ) -> Server:
        """gantry as `uvicorn --factory gantry.main:create_app`, settings from GANTRY_*."""
        full = {
            "GANTRY_DATA_DIR": str(data_dir),
            "GANTRY_DEFAULT_BACKEND": "local",
            "GANTRY_LOG_LEVEL": "warning",
            **(env or {}),
        }
        return cls(
            "gantry.main:create_app",
            data_dir=data_dir,
            env=full,
            factory=True,
            label=kwargs.pop("label", "gantry"),
            **kwargs,
        )

    @classmethod
    def baseline(cls, data_dir: Path, **kwargs: Any) -> Server:
        """bench/baseline_app.py: the minimal FastAPI + SQLite yardstick."""
        env = {"BASELINE_DB": str(Path(data_dir) / "baseline.db"), "PYTHONPATH": str(BENCH)}
        return cls(
            "baseline_app:app",
            data_dir=data_dir,
            env=env,
            label=kwargs.pop("label", "baseline"),
            **kwargs,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self, attempts: int = 5) -> Server:
        """Start on a free port; if another process takes the port first, try another."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(attempts):
            self.port = free_port()
            cmd = [
                PYTHON,
                "-m",
                "uvicorn",
                self.app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                *UVICORN_FLAGS,
            ]
            if self.factory:
                cmd.insert(4, "--factory")
            if self.cpus:
                cmd = ["taskset", "-c", ",".join(map(str, self.cpus)), *cmd]
            env = {**os.environ, **self.env}
            if IMPORT_ROOT is not None and not (IMPORT_ROOT / "gantry").exists():
                subprocess.run([ROOT / "scripts" / "link-tree", IMPORT_ROOT, SOURCE], check=True)
            env["PYTHONPATH"] = os.pathsep.join(
                str(p) for p in (self.env.get("PYTHONPATH"), IMPORT_ROOT) if p
            )
            log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the child
            try:
                self.proc = subprocess.Popen(
                    cmd, cwd=SOURCE, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
                )
            finally:
                log.close()
            try:
                self._wait_healthy()
                return self
            except PortTaken:
                self.stop()
        raise ServerFailed(f"{self.label}: no free port after {attempts} attempts")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    if "address already in use" in self.log_tail(5):
                        raise PortTaken(self.port)
                    raise ServerFailed(
                        f"{self.label} exited with {self.proc.returncode} "
                        f"during start-up:\n{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url(self.health_path)).status_code == 200:
                        # Ours, or someone else's server that took the port first?
                        if listens_on(self.pid, self.port):
                            return
                        if self.proc is not None and self.proc.poll() is not None:
                            raise PortTaken(self.port)
                time.sleep(0.05)
        self.stop()
        raise ServerFailed(
            f"{self.label} was not healthy after {self.startup_timeout:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def sample(self) -> ProcSample:
        return proc_sample(self.pid)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.pid)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM the server (by pid), SIGKILL it if it does not stop in time."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- wrk -----------------------------------------------------------------------


def ensure_wrk() -> str:
    """Path of wrk; installs Debian's package (as root) if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(
            "wrk is missing: installing it with apt-get (Debian package 'wrk') ...", file=sys.stderr
        )
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for attempt in range(2):
            done = subprocess.run(
                ["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, text=True
            )
            if done.returncode == 0:
                break
            if attempt == 0:  # no package lists yet
                subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit(
            "wrk is needed: install it with `apt-get install wrk` (Debian/Ubuntu), "
            "`brew install wrk` (macOS), or build it from github.com/wg/wrk"
        )
    return found


_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# wrk's done() hook, appended to every script: exact figures as one JSON line.
_DONE_HOOK = """
done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"lat_mean_us":%.1f,"lat_max_us":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
"""


@dataclass(slots=True)
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    connections: int
    threads: int
    client_cpu_s: float
    raw: str = field(repr=False, default="")
    server_cpu_us: float = float("nan")  # filled in by callers that sample the server

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())

    def summary(self) -> str:
        errs = ", ".join(f"{k} {v}" for k, v in self.socket_errors.items() if v) or "none"
        return (
            f"{self.rps:8.0f} req/s  p50 {self.p50_ms:6.2f} ms  p90 {self.p90_ms:6.2f} ms  "
            f"p99 {self.p99_ms:6.2f} ms  max {self.max_ms:7.2f} ms  "
            f"({self.requests} requests in {self.duration_s:.1f} s, non-2xx {self.non_2xx}, "
            f"socket errors: {errs}; wrk CPU {self.client_cpu_s:.1f} s)"
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("raw")
        return data


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """wrk's text report (with --latency) as numbers; times in seconds."""
    out: dict[str, Any] = {"latency": {}, "socket_errors": {}, "non_2xx": 0}
    m = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    if m:
        out["requests"] = int(m.group(1))
        out["duration_s"] = _seconds(m.group(2))
    m = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if m:
        out["rps"] = float(m.group(1))
    in_dist = False
    for line in output.splitlines():
        if "Latency Distribution" in line:
            in_dist = True
            continue
        if in_dist:
            m = re.match(r"\s+([\d.]+)%\s+([\d.]+\w+)", line)
            if m:
                out["latency"][float(m.group(1))] = _seconds(m.group(2))
                continue
            in_dist = False
        m = re.match(r"\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", line)
        if m:
            out["latency_max"] = _seconds(m.group(3))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        out["socket_errors"] = dict(
            zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True)
        )
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if m:
        out["non_2xx"] = int(m.group(1))
    m = re.search(r"^WRK_JSON (.*)$", output, re.M)
    if m:
        out["json"] = json.loads(m.group(1))
    return out


def lua_post(path: str, body: Any, extra: str = "") -> str:
    """A wrk script that POSTs ``body`` (JSON) to ``path``."""
    text = json.dumps(body, separators=(",", ":"))
    return (
        textwrap.dedent(f"""\
        wrk.method = "POST"
        wrk.path = {json.dumps(path)}
        wrk.body = {json.dumps(text)}
        wrk.headers["Content-Type"] = "application/json"
        """)
        + extra
    )


def lua_random_get(path_format: str, low: int, high: int, seed: int = 42) -> str:
    """A wrk script GETting ``path_format % random id`` with ids in [low, high]."""
    return textwrap.dedent(f"""\
        local counter = 0
        setup = function(thread)
          counter = counter + 1
          thread:set("seed", {seed} + counter)
        end
        init = function(args)
          math.randomseed(seed)
        end
        request = function()
          return wrk.format("GET", string.format({json.dumps(path_format)},
                                                 math.random({low}, {high})))
        end
        """)


def run_wrk(
    url: str,
    *,
    duration: float = 10.0,
    connections: int = 16,
    threads: int = 2,
    script: str | None = None,
    cpus: Sequence[int] | None = None,
    timeout_s: float = 10.0,
) -> WrkResult:
    """Run wrk with --latency; figures from its done() hook (exact) and its report."""
    wrk = ensure_wrk()
    threads = max(1, min(threads, connections))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write((script or "") + _DONE_HOOK)
        lua = f.name
    cmd = [
        wrk,
        "--latency",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{max(1, round(duration))}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        lua,
        url,
    ]
    if cpus:
        cmd = ["taskset", "-c", ",".join(map(str, cpus)), *cmd]
    try:
        before = os.times()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
        after = os.times()
    finally:
        os.unlink(lua)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    parsed = parse_wrk(done.stdout)
    exact = parsed.get("json")
    if exact is None:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    lat = parsed["latency"]
    duration_s = exact["duration_us"] / 1e6
    client_cpu = (
        after.children_user - before.children_user + after.children_system - before.children_system
    )
    return WrkResult(
        requests=exact["requests"],
        duration_s=duration_s,
        rps=exact["requests"] / duration_s,
        p50_ms=exact["p50_us"] / 1e3,
        p75_ms=lat.get(75.0, float("nan")) * 1e3,
        p90_ms=exact["p90_us"] / 1e3,
        p99_ms=exact["p99_us"] / 1e3,
        p999_ms=exact["p999_us"] / 1e3,
        max_ms=exact["lat_max_us"] / 1e3,
        non_2xx=exact["status"],
        socket_errors={k: exact[k] for k in ("connect", "read", "write", "timeout")},
        connections=connections,
        threads=threads,
        client_cpu_s=client_cpu,
        raw=done.stdout,
    )


# --- statistics, machine, results ----------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil
    return ordered[int(min(rank, len(ordered))) - 1]


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python, date, load: printed with every result."""
    model = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = float("nan")
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 2**20
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": model,
        "nproc": int(nproc) if nproc.isdigit() else os.cpu_count(),
        "mem_gb": round(mem_gb, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "cpu_pressure_at_start": cpu_pressure(),
    }


def cpu_pressure() -> float | None:
    """PSI "some" avg10 of the CPU: % of time something waited for a CPU (other load)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(line.split()[1].split("=")[1])
    return None


def _os_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.system()


def print_machine(info: Mapping[str, Any]) -> None:
    load = ", ".join(f"{x:.2f}" for x in info["loadavg_at_start"])
    psi = info.get("cpu_pressure_at_start")
    print(
        f"machine: {info['cpu_model']}, {info['nproc']} cores, {info['mem_gb']} GiB, "
        f"{info['os']}, Python {info['python']}; {info['date']}; load average {load}"
        + (f"; CPU pressure {psi:.0f}%" if psi is not None else "")
    )
    if info["loadavg_at_start"][0] > 0.5 * info["nproc"]:
        print(
            "WARNING: the machine is busy (load average above half the cores): "
            "figures will be lower and noisier than on an idle machine"
        )


def add_nice_arg(parser: Any) -> None:
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        metavar="N",
        help="run the benchmark, its servers and wrk at this niceness (e.g. -10, needs root): "
        "on a machine shared with other work it approximates an idle machine",
    )


def apply_nice(nice: int, info: dict[str, Any] | None = None) -> None:
    """Run the rest of the benchmark at niceness ``nice`` (servers and wrk inherit it).

    Call it first thing after parsing the arguments: with ``nice`` set, the
    script runs again from the start in a child process (``info``, if given,
    gets ``info["nice"]``).

    The kernel's autogroup scheduling weighs sessions against each other and
    niceness only inside a session, so the benchmark re-runs itself in a new
    session and sets that session's group niceness too; the group ends with it.
    """
    if info is not None:
        info["nice"] = nice
    if not nice:
        return
    if os.environ.get("GANTRY_BENCH_SESSION") != "1":
        child = subprocess.Popen(
            [sys.executable, *sys.argv],
            start_new_session=True,
            env={**os.environ, "GANTRY_BENCH_SESSION": "1"},
        )
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
        sys.exit(child.wait())
    os.setpriority(os.PRIO_PROCESS, 0, nice)
    group = "n/a"
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(nice))
        group = Path("/proc/self/autogroup").read_text().strip()
    print(
        f"running at niceness {os.getpriority(os.PRIO_PROCESS, 0)}, {group} "
        "(a session of its own; servers and wrk inherit both)"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def check(label: str, value: str, target: str, ok: bool) -> dict[str, Any]:
    """Print one target line, return it for the JSON results."""
    print(f"  [{verdict(ok)}] {label}: {value} (target {target})")
    return {"label": label, "value": value, "target": target, "pass": ok}


def start_results(args: Any) -> dict[str, Any]:
    """Niceness applied, the machine printed: the results dict to fill."""
    apply_nice(args.nice)
    info = machine_info()
    info["nice"] = args.nice
    print_machine(info)
    return {"machine": info, "args": vars(args)}


def finish(name: str, results: Mapping[str, Any], checks: list[dict[str, Any]]) -> NoReturn:
    """Print the verdict over ``checks``, write the results, exit 1 if any failed."""
    failed = [c for c in checks if not c["pass"]]
    print(
        f"\n{len(checks) - len(failed)}/{len(checks)} targets met"
        + (": FAIL " + "; ".join(c["label"] for c in failed) if failed else ": PASS")
    )
    print(f"results: {write_results(name, results)}")
    sys.exit(1 if failed else 0)


def write_results(name: str, data: Mapping[str, Any]) -> Path:
    """bench/results/<name>-<timestamp>.json (gitignored)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{stamp}.json"
    data = {**data, "source": str(SOURCE)}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


@contextlib.contextmanager
def scratch_dir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary directory, removed afterwards unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.02) -> float:
    """Poll ``predicate()`` until true; seconds it took. TimeoutError after ``timeout``."""
    begin = time.perf_counter()
    while True:
        if predicate():
            return time.perf_counter() - begin
        if time.perf_counter() - begin > timeout:
            raise TimeoutError(f"not done after {timeout:.0f} s")
        time.sleep(interval)


# --- the baseline of the end-to-end targets ------------------------------------


async def bare_loop(workdir: Path, jobs: int, concurrency: int) -> float:
    """Jobs/s of asyncio running ``bash script`` (``true``) with a semaphore."""
    script = workdir / "script.sh"
    script.write_text("true\n")
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                "bash",
                str(script),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            if await proc.wait() != 0:
                raise SystemExit("bash script failed in the bare loop")

    begin = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(jobs)))
    return jobs / (time.perf_counter() - begin)
