"""docs/client.md, instrument jobs: count on a pipeline, then the data as xarray.

tests/integration/test_client.py runs ``main`` against a real server with the
demo devices file (app/instruments/demo-devices.toml).
"""

from __future__ import annotations

from typing import Any

from gantry.client import Client


def main(url: str, token: str | None = None) -> dict[str, Any]:
    with Client(url, token=token) as gantry:
        # What is there: pipelines with their components' techniques.
        for pipeline in gantry.pipelines():
            print(pipeline.name, pipeline.sample, pipeline.ready)
        print(gantry.component("counter", "1").capabilities)  # ['count', 'random']

        # Count for 1 s, a sample every 50 ms, on pip-counter-1: the client loads
        # the sample into the pipeline and marks it ready first.
        job = gantry.submit_instrument(
            sample={"name": "S1", "operator": "docs"},
            method=[
                {
                    "component_role": "counter",
                    "technique_name": "count",
                    "max_duration": "1 s",
                    "sampling_interval": "50 ms",
                }
            ],
            pipeline="pip-counter-1",
            name="count_S1",
        )
        ended = gantry.wait(job.id, timeout=120)
        print(ended.state)  # completed

        # The data as an xarray.Dataset: uts as the coordinate, a variable per value.
        counter = gantry.dataset(job.id, "counter")
        print(counter["val"].values[:3], counter["delay"].attrs["units"])  # [1. 2. 3.] s
        print(counter.attrs["sample"])  # {"name": "S1", "operator": "docs"}

        # The same samples as JSON pages, here while the job runs, too.
        samples = [s for page in gantry.iter_data(job.id) for s in page.samples]
        gantry.eject("pip-counter-1")
    return {"job": ended, "dataset": counter, "samples": samples}
