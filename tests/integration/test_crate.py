"""GET /jobs/{id}/crate: a real counter job and a real local analysis job depending on it,
exported as an RO-Crate, validated with roc-validator and read back point by point."""

from __future__ import annotations

import io
import json
import os
import time
import warnings
import zipfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import urllib3
from fastapi import FastAPI
from requests.adapters import HTTPAdapter
from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from gantry.backends.local import LocalBackend
from gantry.client import AsyncClient, Conflict
from gantry.main import create_app
from gantry.settings import Settings
from tests.integration.instruments import (
    API,
    DRIVERS,
    devices_file,
    job_body,
    ready,
    samples,
    submit,
    task,
    wait_job,
)

ANALYSE = """\
set -e
echo "fitting $(wc -l < "$GANTRY_INPUT") lines"
sort -r "$GANTRY_INPUT" > fit.txt
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: the crate reads rows, whichever database holds them."""
    return Settings(data_dir=tmp_path / "var", default_backend="local")


@asynccontextmanager
async def lab(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """The real app: the local backend runs bash, the counter driver counts."""
    app = create_app(
        settings.model_copy(update={"devices_file": devices_file(settings.data_dir.parent)}),
        backends={"local": LocalBackend},
        drivers=DRIVERS,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gantry") as client:
            yield client, app


class _Bundled(HTTPAdapter):
    """Answers the RO-Crate context URL with the copy the rocrate package ships."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(self.body),
            headers={"Content-Type": "application/ld+json"},
            status=200,
            preload_content=False,
            request_url=request.url,
        )
        return self.build_response(request, raw)


@pytest.fixture(scope="module")
def prepared_sparql() -> Iterator[None]:
    """pyshacl has rdflib parse each SPARQL constraint anew for every entity it checks
    (0.2 s a parse here: most of a validation); reuse each parsed query instead, as
    rdflib's own ``prepareQuery`` is meant to be. The checks stay the same."""
    from rdflib.plugins.sparql import processor
    from rdflib.plugins.sparql.algebra import translateQuery
    from rdflib.plugins.sparql.parser import parseQuery

    original = processor.SPARQLProcessor.query
    prepared: dict[tuple[Any, ...], Any] = {}

    def query(
        self: Any,
        q: Any,
        initBindings: Any = None,
        initNs: Any = None,
        base: Any = None,
        DEBUG: bool = False,
    ) -> Any:
        if isinstance(q, str):
            key = (q, base, tuple(sorted((k, str(v)) for k, v in (initNs or {}).items())))
            if key not in prepared:
                prepared[key] = translateQuery(parseQuery(q), base, initNs)
            q = prepared[key]
        return original(self, q, initBindings, initNs, base, DEBUG)

    processor.SPARQLProcessor.query = query  # type: ignore[method-assign]
    yield
    processor.SPARQLProcessor.query = original  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def validator_cache(
    tmp_path_factory: pytest.TempPathFactory, prepared_sparql: None
) -> Iterator[str]:
    """roc-validator's HTTP cache, holding the context: it then validates offline.

    The machine has no network; the context is the one the rocrate package
    ships for the version it writes (its ``@id`` is the context's URL).
    """
    import requests_cache
    import rocrate

    body = (Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld").read_bytes()
    url = json.loads(body)["@id"]
    path = str(tmp_path_factory.mktemp("roc-validator") / "http")
    with requests_cache.CachedSession(cache_name=path, backend="sqlite", expire_after=-1) as s:
        s.mount("https://", _Bundled(body))
        assert s.get(url).status_code == 200
    # The validator can fail: a crate whose software has no url nor version does.
    broken = tmp_path_factory.mktemp("broken") / "crate.zip"
    crate = ROCrate()
    crate.root_dataset["name"] = crate.root_dataset["description"] = "broken"
    crate.add(ContextEntity(crate, "#tool", properties={"@type": "SoftwareApplication"}))
    crate.write_zip(broken)
    issues = validate(broken, path)
    assert any("`url`" in i for i in issues) and any("`license`" in i for i in issues), issues
    yield path


def validate(crate: Path, cache: str) -> list[str]:
    """Issues at roc-validator's REQUIRED level (RO-Crate 1.3 profile)."""
    from rocrate_validator import models, services

    settings = services.ValidationSettings(
        rocrate_uri=str(crate),
        profile_identifier="ro-crate-1.3",
        requirement_severity=models.Severity.REQUIRED,
        offline=True,
        cache_path=cache,
    )
    with warnings.catch_warnings():
        # rdflib 7 deprecates ConjunctiveGraph, which pyshacl still uses: not ours to fix
        warnings.simplefilter("ignore", DeprecationWarning)
        result = services.validate(settings)
    return [f"{i.check.identifier if i.check else '?'}: {i.message}" for i in result.get_issues()]


def graph(zf: zipfile.ZipFile) -> dict[str, dict[str, Any]]:
    metadata = json.loads(zf.read("ro-crate-metadata.json"))
    return {e["@id"]: e for e in metadata["@graph"]}


def values(g: dict[str, dict[str, Any]], entity: dict[str, Any]) -> dict[str, Any]:
    """An entity's additionalProperty PropertyValues, by name."""
    found = (g[i] for i in ids(entity.get("additionalProperty", [])))
    return {p["name"]: p["value"] for p in found}


def ids(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [v["@id"] for v in values]


def save(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


async def crate_of(client: httpx.AsyncClient, job_id: int, path: Path, **params: Any) -> Path:
    response = await client.get(f"{API}/jobs/{job_id}/crate", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return save(path, response.content)


async def test_a_measure_then_analyse_chain_validates_and_holds_every_data_point(
    settings: Settings, tmp_path: Path, validator_cache: str
) -> None:
    import xarray as xr

    work = tmp_path / "analysis"
    work.mkdir()
    stale = work / "stale.txt"  # declared, but left from before the run: not its output
    stale.write_text("old")
    os.utime(stale, (time.time() - 86_400, time.time() - 86_400))
    async with lab(settings) as (client, _):
        await ready(client, "pip-duo", "S9")
        body = job_body(
            task("left", max_duration=0.5, sampling_interval=0.05, task_name="count up"),
            task("right", technique_name="random", max_duration=0.3, sampling_interval=0.05),
            sample="S9",
        )
        body["payload"]["sample"] |= {"operator": "ada", "mass_mg": 12.5}
        measure = await submit(client, body)
        # The analysis reads the measured data (its CSV) and declares gwf-style outputs.
        data_csv = settings.data_dir / "data" / str(measure["id"]) / "left.jsonl"
        analyse = await submit(
            client,
            {
                "name": "analyse",
                "spec": ANALYSE,
                "depends_on": [measure["id"]],
                "working_dir": str(work),
                "env": {"GANTRY_INPUT": str(data_csv)},
                "outputs": ["fit.txt", "missing.txt", "/dev/null", "stale.txt"],
            },
        )
        done = await wait_job(client, analyse["id"], limit=30)
        assert done["state"] == "completed", done
        api_data = await samples(client, measure["id"])
        crate = await crate_of(client, measure["id"], tmp_path / "m.zip", license="CC-BY-4.0")
        # the same chain, asked for from its other end; or the analysis alone
        from_analysis = await crate_of(client, analyse["id"], tmp_path / "a.zip")
        alone = await crate_of(client, analyse["id"], tmp_path / "b.zip", chain="false")

    assert validate(crate, validator_cache) == []
    with zipfile.ZipFile(crate) as zf:
        g = graph(zf)
        names = set(zf.namelist())
        m, a = f"job-{measure['id']}", f"job-{analyse['id']}"
        # every data point of every role, read back from the NetCDF in the zip
        (tmp_path / "data.nc").write_bytes(zf.read(f"{m}/data.nc"))
        for page in api_data["roles"]:
            with xr.open_dataset(tmp_path / "data.nc", group=page["role"]) as ds:
                assert list(ds["uts"].values) == [s["uts"] for s in page["samples"]]
                for name in page["samples"][0]["values"]:
                    assert list(ds[name].values) == [s["values"][name] for s in page["samples"]]
        assert sum(len(p["samples"]) for p in api_data["roles"]) == 16
        rows = zf.read(f"{m}/data.csv").decode().splitlines()
        assert len(rows) == 1 + 16 and rows[0].startswith("role,uts,task,task_name,technique")
        # sizes and formats as stored
        for name in (f"{m}/data.nc", f"{m}/data.csv", f"{a}/outputs/fit.txt"):
            assert g[name]["contentSize"] == str(zf.getinfo(name).file_size)
        assert g[f"{m}/data.nc"]["encodingFormat"] == "application/x-netcdf"
        assert g[f"{m}/data.csv"]["encodingFormat"] == "text/csv"
        assert zf.read(f"{a}/outputs/fit.txt").splitlines()[0].startswith(b'{"uts"')
        assert f"{a}/stdout.log" in names and b"fitting 10 lines" in zf.read(f"{a}/stdout.log")
        assert not any(w in n for w in ("missing", "null", "stale") for n in names)
        assert b"gantry job" in zf.read("ro-crate-preview.html")  # a page for people

        root = g["./"]
        assert ids(root["mentions"]) == [f"#job-{measure['id']}", f"#job-{analyse['id']}"]
        assert root["license"] == {"@id": "https://spdx.org/licenses/CC-BY-4.0"}
        # the measurement: equipment, drivers with versions, sample and method, data
        act = g[f"#job-{measure['id']}"]
        assert act["@type"] == "CreateAction"
        assert act["actionStatus"] == {"@id": "http://schema.org/CompletedActionStatus"}
        assert act["startTime"] < act["endTime"]
        instrument = ids(act["instrument"])
        assert {"#pipeline-pip-duo", "#component-counter-3", "#component-counter-4"} <= set(
            instrument
        )
        assert g["#component-counter-3"]["isPartOf"] == {"@id": "#device-counter"}
        assert g["#device-counter"]["@type"] == "IndividualProduct"
        driver = g["#driver-example_counter"]
        assert driver["@type"] == "SoftwareApplication" and "#driver-example_counter" in instrument
        from importlib.metadata import version

        assert driver["version"] == version("gantry")
        props = values(g, driver)
        assert props["driver interface"] == "2.0" and props["package"] == "gantry"
        sample = g["#sample-S9"]
        extra = values(g, sample)
        assert sample["name"] == "S9" and extra == {"operator": "ada", "mass_mg": 12.5}
        method = g[f"{m}/method.json"]
        assert ids(act["object"]) == ["#sample-S9", f"{m}/method.json"]
        assert [g[s]["name"] for s in ids(method["step"])] == ["count up", "right: random"]
        assert ids(act["result"]) == [f"{m}/data.nc", f"{m}/data.csv"]
        events = json.loads(zf.read(f"{m}/events.json"))
        assert [e["to_state"] for e in events] == ["queued", "submitted", "running", "completed"]
        assert g[f"{m}/events.json"]["about"] == {"@id": f"#job-{measure['id']}"}
        # the analysis: its script and backend ran it on the measured data
        step = g[f"#job-{analyse['id']}"]
        assert ids(step["object"]) == [f"{m}/data.nc", f"{m}/data.csv"]
        assert f"{a}/script.sh" in ids(step["instrument"])
        assert zf.read(f"{a}/script.sh").decode() == ANALYSE
        assert ids(step["result"]) == [f"{a}/outputs/fit.txt", f"{a}/stderr.log", f"{a}/stdout.log"]
        record = json.loads(zf.read(f"{a}/job.json"))
        assert record["depends_on"] == [measure["id"]] and record["outputs"][0] == "fit.txt"
        assert record["env"] == {"GANTRY_INPUT": None}  # names only: values may be secrets
        assert record["accounting"]["cpu_user_seconds"] is not None
    with zipfile.ZipFile(from_analysis) as zf:
        assert ids(graph(zf)["./"]["mentions"]) == ids(root["mentions"])
    with zipfile.ZipFile(alone) as zf:
        g = graph(zf)
        assert ids(g["./"]["mentions"]) == [f"#job-{analyse['id']}"]
        assert "object" not in g[f"#job-{analyse['id']}"] and not any(
            n.startswith(m) for n in zf.namelist()
        )


async def test_what_a_crate_cannot_hold_is_refused_and_ended_jobs_give_what_exists(
    settings: Settings, tmp_path: Path, validator_cache: str
) -> None:
    async with lab(settings) as (client, app):
        missing = await client.get(f"{API}/jobs/999/crate")
        assert missing.status_code == 404 and "job 999 does not exist" in missing.text
        bad = await client.get(f"{API}/jobs/1/crate", params={"license": "no such thing"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "license"]
        assert "SPDX licence id" in bad.json()["detail"][0]["msg"]
        await ready(client, "pip-1")
        measure = await submit(client, job_body(task(max_duration=60, sampling_interval=0.05)))
        await wait_job(client, measure["id"], "running")
        later = {
            "name": "later",
            "spec": "echo later",
            "depends_on": [measure["id"]],
            "outputs": ["/etc/hostname"],  # exists, but the job never ran: not its output
        }
        after = await submit(client, later)
        busy = await client.get(f"{API}/jobs/{measure['id']}/crate")
        assert busy.status_code == 409, busy.text
        assert f"job {measure['id']} (measure) is running" in busy.json()["detail"]
        # an ended job whose dependent waits: the crate of it alone is the way out
        first = await submit(client, {"name": "first", "spec": "true"})
        assert (await wait_job(client, first["id"]))["state"] == "completed"
        both = {"name": "both", "spec": "true", "depends_on": [first["id"], measure["id"]]}
        waiting = await submit(client, both)
        held = await client.get(f"{API}/jobs/{first['id']}/crate")
        assert held.status_code == 409 and f"job {waiting['id']} (both) is queued" in held.text
        assert f"or export job {first['id']} alone with chain=false" in held.text
        await crate_of(client, first["id"], tmp_path / "first.zip", chain="false")
        # the Python client: the same answer, the server's words in its error
        gantry = AsyncClient("http://gantry", transport=httpx.ASGITransport(app=app))
        async with gantry:
            with pytest.raises(Conflict, match=r"\(measure\) is running"):
                async for _ in gantry.download_crate(measure["id"]):
                    pass
        # a command job alone, failed: no data, but its script, logs and events
        alone = await submit(client, {"name": "alone", "spec": "echo hi; exit 3"})
        assert (await wait_job(client, alone["id"]))["state"] == "failed"
        lone = await crate_of(client, alone["id"], tmp_path / "alone.zip")
        async with AsyncClient("http://gantry", transport=httpx.ASGITransport(app=app)) as gantry:
            chunks = [c async for c in gantry.download_crate(alone["id"], chain=False)]
        with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as zf:
            assert f"job-{alone['id']}/script.sh" in zf.namelist()
        # cancelling the measurement cancels its dependent (afterok): both end
        assert (await client.post(f"{API}/jobs/{measure['id']}/cancel")).status_code == 202
        assert (await wait_job(client, after["id"]))["state"] == "cancelled"
        api_data = await samples(client, measure["id"])
        chain = await crate_of(client, after["id"], tmp_path / "chain.zip")

    assert validate(lone, validator_cache) == []
    with zipfile.ZipFile(lone) as zf:
        g = graph(zf)
        act = g[f"#job-{alone['id']}"]
        assert act["actionStatus"] == {"@id": "http://schema.org/FailedActionStatus"}
        assert "exit code 3" in act["error"] or "3" in act["error"]
        assert b"hi" in zf.read(f"job-{alone['id']}/stdout.log")
        assert not any(n.endswith(".nc") for n in zf.namelist())
    with zipfile.ZipFile(chain) as zf:
        g = graph(zf)
        m = f"job-{measure['id']}"
        # the samples taken before the cancel are all there
        stored = [s["values"]["val"] for s in api_data["roles"][0]["samples"]]
        assert stored and len(zf.read(f"{m}/data.csv").decode().splitlines()) == 1 + len(stored)
        never = g[f"#job-{after['id']}"]
        assert "startTime" not in never and "cancelled" in never["error"]
        assert ids(never["object"]) == [f"{m}/data.nc", f"{m}/data.csv"]
        assert "result" not in never  # it never ran: no logs, no outputs


def test_a_chain_is_the_ancestors_and_descendants_not_their_other_branches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlmodel import Session

    from gantry import db
    from gantry.export import chain
    from gantry.models import Job, JobDependency

    url = f"sqlite:///{tmp_path / 'chain.db'}"
    db.upgrade(url)
    database = db.make_engine(url)
    #   1 -> 2 -> 4        (2 depends on 1, 4 on 2 and 3)
    #   3 ---------^
    #   1 -> 5             (a sibling branch of 2)
    edges = [(2, 1), (4, 2), (4, 3), (5, 1)]
    with Session(database) as session:
        session.add_all(Job(id=i, name=f"j{i}", backend="fake") for i in range(1, 6))
        session.flush()
        session.add_all(JobDependency(job_id=a, depends_on_id=b) for a, b in edges)
        session.commit()
    with database.connect() as conn:
        assert chain.chain_ids(conn, 2) == [1, 2, 4]  # not 3 (4's other input), not 5
        assert chain.chain_ids(conn, 1) == [1, 2, 4, 5]
        assert chain.chain_ids(conn, 4) == [1, 2, 3, 4]
        jobs = chain.read_jobs(conn, 4, whole=True)
        assert [j.id for j in chain.in_order(list(reversed(jobs)))][-1] == 4
        assert [j.depends_on for j in jobs if j.id == 4] == [[2, 3]]
        assert [j.id for j in chain.read_jobs(conn, 4, whole=False)] == [4]
        assert chain.read_jobs(conn, 99, whole=True) == []
        monkeypatch.setattr(chain, "MAX_CHAIN", 2)
        with pytest.raises(chain.ChainTooLong, match="export the job alone with chain=false"):
            chain.chain_ids(conn, 1)
    database.dispose()


def test_driver_software_names_the_package_that_ran_even_through_the_tomato_adapter() -> None:
    from importlib.metadata import version

    from gantry.drivers.example_counter import DriverInterface as Counter
    from gantry.drivers.registry import driver_software
    from gantry.drivers.tomato_host import resolve_tomato_driver
    from gantry.export.parts import package_url

    assert driver_software(Counter) == {
        "module": "gantry.drivers.example_counter",
        "interface": "2.0",
        "package": "gantry",
        "version": version("gantry"),
    }
    tomato = driver_software(resolve_tomato_driver("tomato:example_counter"))
    assert tomato == {
        "module": "tomato_example_counter",
        "interface": "2.1",
        "package": "tomato-example-counter",
        "version": version("tomato-example-counter"),
    }
    assert package_url("tomato-example-counter") == (
        "https://github.com/dgbowl/tomato-example-counter/"
    )
    assert package_url("no-such-package") is None


def test_gantry_export_crate_writes_the_zip_or_says_why_not(tmp_path: Path) -> None:
    """The real CLI against a real `gantry serve`, each its own process."""
    import subprocess

    from tests.acceptance.server import GANTRY, ServerProcess, clean_env

    server = ServerProcess(tmp_path)
    server.start()

    def gantry(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GANTRY, *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=clean_env(GANTRY_URL=server.url),
        )

    try:
        done = gantry("submit", "--wait", "--", "echo", "hello")
        assert done.returncode == 0, done.stderr
        job_id = done.stdout.strip()
        made = gantry("export", job_id, "--crate", "--license", "MIT")
        assert made.returncode == 0, made.stderr
        with zipfile.ZipFile(tmp_path / f"job-{job_id}-crate.zip") as zf:
            g = graph(zf)
            assert g["./"]["license"] == {"@id": "https://spdx.org/licenses/MIT"}
            assert zf.read(f"job-{job_id}/stdout.log") == b"hello\n"
        missing = gantry("export", "999", "--crate")
        assert missing.returncode != 0 and "job 999 does not exist" in missing.stderr
        assert not (tmp_path / "job-999-crate.zip").exists()
    finally:
        server.stop()


def test_the_action_names_its_submitter_by_token_when_one_is_recorded(tmp_path: Path) -> None:
    from gantry.export.chain import ExportJob
    from gantry.export.crate import build_crate
    from gantry.models import Job

    def job(job_id: int, submitted_by: str | None) -> ExportJob:
        row = Job(id=job_id, name=f"j{job_id}", backend="local", spec="true", state="completed")
        row.submitted_by = submitted_by
        return ExportJob(row=row.model_dump(), depends_on=[], events=[])

    path = build_crate([job(1, "lab bench 3"), job(2, None)], 1, "http://127.0.0.1:1/api/v1")
    try:
        with zipfile.ZipFile(path) as zipped:
            graph = json.loads(zipped.read("ro-crate-metadata.json"))["@graph"]
    finally:
        path.unlink()
    by_id = {e["@id"]: e for e in graph}
    agent = by_id["#job-1"]["agent"]["@id"]
    assert by_id[agent]["@type"] == "Person" and by_id[agent]["name"] == "lab bench 3"
    assert " " not in agent  # an IRI
    assert "agent" not in by_id["#job-2"]
