"""Run docs/examples/tomato/payload.toml on a gantry server and read its data back.

``python run_counter.py http://127.0.0.1:8000`` against a server started with
``GANTRY_DEVICES_FILE=devices.toml gantry serve``.
"""

from __future__ import annotations

import csv
import io
import sys
import tomllib
from pathlib import Path
from typing import Any

import anyio
import httpx

HERE = Path(__file__).parent
API = "/api/v1"


async def run(client: httpx.AsyncClient) -> list[dict[str, str]]:
    """Load the sample, mark the pipeline ready, run the payload; its data as CSV rows."""
    payload = tomllib.loads((HERE / "payload.toml").read_text())
    pipeline = f"{API}/pipelines/pip-counter"
    sample = payload["sample"]["name"]
    (await client.post(f"{pipeline}/load", json={"sample": sample})).raise_for_status()
    (await client.post(f"{pipeline}/ready")).raise_for_status()
    body = {"name": "counter_run", "payload": payload}
    job = (await client.post(f"{API}/jobs", json=body)).raise_for_status().json()
    while job["state"] not in ("completed", "failed", "cancelled"):
        await anyio.sleep(0.2)
        job = (await client.get(f"{API}/jobs/{job['id']}")).json()
    if job["state"] != "completed":
        raise RuntimeError(f"job {job['id']} {job['state']}: {job['reason']}")
    data = await client.get(f"{API}/jobs/{job['id']}/data", params={"format": "csv"})
    return list(csv.DictReader(io.StringIO(data.text)))


async def main(url: str) -> Any:
    async with httpx.AsyncClient(base_url=url) as client:
        rows = await run(client)
    for row in rows:
        print(row["task"], row["technique"], row["val"], row["param"], row["choice"])
    return rows


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")
