"""gantry.client against one real server (a `gantry serve` process with the demo
instruments and API tokens): the blocking and the asyncio client, live logs,
waits, the server's errors, and a counter job's data as xarray. The examples of
docs/client.md run here too, and its code blocks are checked to be theirs."""

from __future__ import annotations

import importlib
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine

from gantry import db
from gantry.client import (
    AsyncClient,
    AuthError,
    Client,
    Conflict,
    InvalidRequest,
    NotFound,
    Unreachable,
    WaitTimeout,
)
from gantry.settings import Settings
from gantry.tokens import create_token
from tests.acceptance.server import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "app" / "instruments" / "demo-devices.toml"
DOCS = ROOT / "docs"
EXAMPLES = ["client_sync.py", "client_async.py", "client_instrument.py"]


class Lab:
    def __init__(self, server: ServerProcess, tokens: dict[str, str]) -> None:
        self.server = server
        self.url = server.url
        self.tokens = tokens

    def client(self, scope: str = "submit") -> Client:
        return Client(self.url, token=self.tokens[scope])

    def aclient(self) -> AsyncClient:
        return AsyncClient(self.url, token=self.tokens["submit"])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("client")
    server = ServerProcess(root, GANTRY_DEVICES_FILE=str(DEMO))
    url = Settings(data_dir=server.data_dir).resolved_database_url
    server.data_dir.mkdir(parents=True)
    db.upgrade(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        tokens = {
            scope: create_token(conn, f"{scope}-er", [scope])[1] for scope in ("read", "submit")
        }
    engine.dispose()
    server.start()
    try:
        yield Lab(server, tokens)
    finally:
        server.stop()


def gated_job(gate: Path) -> str:
    """A job that prints, then waits until ``gate`` exists: it cannot end before the test says."""
    return f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second"


# --- the blocking client ------------------------------------------------------------


def test_follow_logs_sees_text_while_the_job_runs(lab: Lab, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    with lab.client() as gantry:
        job = gantry.submit(spec=gated_job(gate), name="gated")
        stream = gantry.follow_logs(job.id)
        assert next(stream) == "first\n"
        assert gantry.job(job.id).state == "running"  # the gate holds it
        gate.touch()
        assert "".join(stream) == "second\n"  # the stream ends with the job
        ended = gantry.wait(job.id, timeout=60)
        assert (ended.state, ended.exit_code) == ("completed", 0)
        assert gantry.logs(job.id) == "first\nsecond\n"
        assert [e.to_state for e in gantry.events(job.id)] == [
            "queued",
            "submitted",
            "running",
            "completed",
        ]


def test_wait_times_out_then_cancel_and_the_ended_job_conflicts(lab: Lab, tmp_path: Path) -> None:
    with lab.client() as gantry:
        job = gantry.submit(spec=gated_job(tmp_path / "never"))
        seen: list[str] = []
        with pytest.raises(WaitTimeout) as timed_out:
            gantry.wait(job.id, timeout=1.5, on_event=lambda e: seen.append(e.to_state))
        assert timed_out.value.states[job.id] in ("submitted", "running")
        assert seen[0] == "queued"
        assert gantry.cancel(job.id).state in ("cancelling", "cancelled")
        assert gantry.wait(job.id, timeout=60).state == "cancelled"
        with pytest.raises(Conflict) as ended:
            gantry.cancel(job.id)
        assert ended.value.message == f"job {job.id} already ended: it is cancelled"
        assert (ended.value.job_id, ended.value.state) == (job.id, "cancelled")


def test_errors_carry_the_servers_words(lab: Lab) -> None:
    with lab.client() as gantry:
        with pytest.raises(NotFound, match=r"^job 123456789 does not exist$"):
            gantry.job(123456789)
        with pytest.raises(InvalidRequest) as invalid:
            gantry.submit(spec="true", name="1st", options={"walltime": "soon"})
        fields = {e.field: e.message for e in invalid.value.errors}
        assert "use a letter or underscore" in fields["name"]
        assert invalid.value.status == 422
    with lab.client("read") as viewer, pytest.raises(AuthError) as refused:
        viewer.submit(spec="true")
    assert refused.value.status == 403 and "lacks the 'submit' scope" in refused.value.message
    with Client(lab.url) as anonymous, pytest.raises(AuthError, match="requires an API token"):
        anonymous.jobs()
    with Client(f"http://127.0.0.1:{free_port()}") as nowhere, pytest.raises(Unreachable):
        nowhere.health()


def test_a_log_stream_of_a_command_job_and_data_of_it(lab: Lab) -> None:
    with lab.client() as gantry:
        job = gantry.submit(spec="echo done")
        gantry.wait(job.id, timeout=60)
        assert list(gantry.follow_logs(job.id)) == ["done\n"]
        with pytest.raises(NotFound, match="is a command job: it has no instrument data"):
            gantry.dataset(job.id)
        with pytest.raises(NotFound, match="is a command job"):
            list(gantry.follow_data(job.id))


# --- the asyncio client --------------------------------------------------------------


async def test_the_async_client_follows_and_waits(lab: Lab, tmp_path: Path) -> None:
    gate = tmp_path / "go"
    async with lab.aclient() as gantry:
        job = await gantry.submit(spec=gated_job(gate), name="gated_async")
        events = gantry.follow_events(job.id)
        states = []
        async for event in events:
            states.append(event.to_state)
            if event.to_state == "running":
                break
        await events.aclose()
        logs = gantry.follow_logs(job.id)
        assert await anext(logs) == "first\n"
        gate.touch()
        assert [text async for text in logs] == ["second\n"]
        ended = await gantry.wait(job.id, timeout=60)
        assert states == ["queued", "submitted", "running"] and ended.state == "completed"
        with pytest.raises(NotFound, match=f"^job {10**9} does not exist$"):
            await gantry.wait(10**9)
        stats = await gantry.stats(tag="none-such")
        assert stats.jobs == 0


# --- instrument jobs ---------------------------------------------------------------


def test_the_docs_instrument_example_counts_and_reads_the_data_as_xarray(
    lab: Lab, examples: dict[str, ModuleType]
) -> None:
    seen = examples["client_instrument.py"].main(lab.url, lab.tokens["submit"])
    job, counter, samples = seen["job"], seen["dataset"], seen["samples"]
    assert job.state == "completed" and job.payload["sample"]["name"] == "S1"
    assert len(counter["uts"]) == len(samples) > 5
    assert list(counter["val"].values) == [s["values"]["val"] for s in samples]
    assert list(counter["val"].values[:3]) == [1.0, 2.0, 3.0]  # counting up
    assert counter["delay"].attrs["units"] == "s"
    assert (
        counter.attrs["driver"] == "example_counter"
        and '"operator": "docs"' in counter.attrs["sample"]
    )
    with lab.client() as gantry:
        assert gantry.pipeline("pip-counter-1").sample is None  # ejected


async def test_follow_data_streams_a_running_counter(lab: Lab) -> None:
    method = [
        {
            "component_role": "counter",
            "technique_name": "count",
            "max_duration": "1 s",
            "sampling_interval": "100 ms",
        }
    ]
    async with lab.aclient() as gantry:
        job = await gantry.submit_instrument(sample="S2", method=method, pipeline="pip-counter-2")
        values = [
            s["values"]["val"] async for page in gantry.follow_data(job.id) for s in page.samples
        ]
        assert values == [float(n) for n in range(1, len(values) + 1)] and len(values) > 3
        assert (await gantry.wait(job.id, timeout=60)).state == "completed"
        counter = await gantry.dataset(job.id)  # its one role; parsed off the event loop
        assert list(counter["val"].values) == values and counter.attrs["job_id"] == job.id
        with pytest.raises(Conflict, match="holds sample 'S2': eject it first"):
            await gantry.load("pip-counter-2", "S3")
        await gantry.eject("pip-counter-2")


# --- docs/client.md ------------------------------------------------------------------


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, ModuleType]]:
    monkeypatch.syspath_prepend(str(DOCS / "examples"))
    yield {name: importlib.import_module(name.removesuffix(".py")) for name in EXAMPLES}


def test_the_docs_sync_example(lab: Lab, examples: dict[str, ModuleType]) -> None:
    seen = examples["client_sync.py"].main(lab.url, lab.tokens["submit"])
    assert seen["greet"] == ("completed", "hello from greet\n")
    assert set(seen["batch"].values()) == {"completed"} and len(seen["batch"]) == 2
    assert seen["array"] == [0, 1, 2, 3]
    assert [e.field for e in seen["invalid"]] == ["name"]
    assert seen["missing"] == "job 1000000000 does not exist" and seen["ended"] == "completed"


async def test_the_docs_async_example(lab: Lab, examples: dict[str, ModuleType]) -> None:
    seen = await examples["client_async.py"].main(lab.url, lab.tokens["submit"])
    assert len(seen["ended"]) == 10 and set(seen["ended"].values()) == {"completed"}
    assert seen["log"] == "line 1\nline 2\nline 3\n"
    assert seen["states"] == ["queued", "submitted", "running", "completed"]


def test_every_code_block_of_the_page_is_an_excerpt_of_the_examples() -> None:
    page = (DOCS / "client.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.DOTALL)
    sources = [(DOCS / "examples" / name).read_text() for name in EXAMPLES]
    assert len(blocks) >= 6
    for block in blocks:
        indented = [textwrap.indent(block, " " * n) for n in (0, 4, 8)]
        assert any(b in s for b in indented for s in sources), f"not in the examples:\n{block}"
