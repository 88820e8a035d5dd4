"""An RO-Crate of ended jobs, written with the ``rocrate`` library as a zip file.

Each job is a ``CreateAction`` (RO-Crate 1.1 and later, "Provenance"):

- an instrument job's ``instrument`` is its pipeline, the components and
  their devices (``IndividualProduct``, "equipment used to create files") and
  the drivers that ran them (``SoftwareApplication`` with their ``version``);
  its ``object`` is the sample and the method; its ``result`` the data as
  NetCDF (a group per role) and CSV;
- a command job's ``instrument`` is its script (``SoftwareSourceCode``) and its
  backend; its ``object`` is the results of the jobs it depends on (in a
  measure -> analyse chain: the measured data); its ``result`` the files it
  declared as ``outputs`` (gwf-style, relative to its working directory) that
  this run wrote, and its stdout and stderr.

Every job also has its record (``job.json``) and its events (``events.json``).
Files are copied from disk into the zip in chunks, never held in memory. The
functions are sync: run them on a worker thread.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

# The rocrate library ships no type information.
from rocrate.model.entity import Entity  # type: ignore[import-untyped]
from rocrate.rocrate import ROCrate  # type: ignore[import-untyped]

from gantry.export.chain import ExportJob, in_order
from gantry.export.graph import CrateGraph
from gantry.export.parts import (
    STATUS,
    gantry_version,
    iso,
    job_record,
    package_url,
    roles_with_data,
    stamp,
    write_csv,
)
from gantry.instruments.data import read_meta
from gantry.instruments.export import netcdf_file

#: The context of 1.3 ships with the rocrate library, so validators can check it offline;
#: the conventions used (CreateAction, instrument, ...) are those of 1.1, unchanged.
RO_CRATE_VERSION = "1.3"
#: Seconds a job's output may seem older than the job (another machine's clock).
CLOCK_SKEW = 60.0
UNLICENSED = (
    "Whoever exported this crate chose no licence (gantry's license parameter): "
    "until one is given, all rights are reserved by the data's owners."
)


@dataclass(slots=True)
class _Builder(CrateGraph):
    #: job id -> the files it produced (what a dependent job read)
    results: dict[int, list[Entity]] = field(default_factory=dict)

    # -- software and equipment ------------------------------------------------

    def gantry(self) -> Entity:
        return self.entity(
            "#gantry",
            {
                "@type": "SoftwareApplication",
                "name": "gantry",
                "description": "The job service that ran the jobs and made this crate.",
                "version": gantry_version() or "unknown",
                "url": package_url("gantry") or self.api,
            },
        )

    def submitter(self, token_name: str) -> Entity:
        """Who submitted a job: gantry knows the API token's name, not a person."""
        return self.entity(
            f"#submitter-{quote(token_name, safe='')}",
            {
                "@type": "Person",
                "name": token_name,
                "description": f"whoever holds the API token {token_name!r} of this gantry server",
            },
        )

    def driver(self, name: str, software: Mapping[str, Any]) -> Entity:
        props: dict[str, Any] = {
            "@type": "SoftwareApplication",
            "name": f"driver {name}",
            "description": f"The gantry driver {name!r} that ran the components.",
            "version": software.get("version") or "unknown",
            "url": package_url(software.get("package")) or f"{self.api}/drivers",
        }
        keys = {"driver interface": "interface", "module": "module", "package": "package"}
        values = {k: software.get(v) for k, v in keys.items()}
        return self.entity(f"#driver-{name}", props, values)

    def instrument_of(self, meta: Mapping[str, Any]) -> list[Entity]:
        """The pipeline, its components, their devices and drivers (equipment and software)."""
        parts: list[Entity] = []
        drivers: dict[str, Entity] = {}
        roles: dict[str, str] = {}
        for role, comp in sorted(meta.get("components", {}).items()):
            device = self.entity(
                f"#device-{comp['device']}",
                {
                    "@type": "IndividualProduct",
                    "name": comp["device"],
                    "description": f"device {comp['device']} at address {comp.get('address')}",
                },
                {"address": comp.get("address"), "driver": comp.get("driver")},
            )
            label = f"{comp['device']}/{comp['channel']}"
            roles[role] = label
            parts.append(
                self.entity(
                    f"#component-{comp['device']}-{comp['channel']}",
                    {
                        "@type": "IndividualProduct",
                        "name": label,
                        "description": f"channel {comp['channel']} of device {comp['device']}",
                        "isPartOf": device,
                    },
                    {"channel": comp["channel"], **comp.get("constants", {})},
                )
            )
            name = comp.get("driver") or "unknown"
            drivers[name] = self.driver(name, comp.get("software") or {})
        found: list[Entity] = []
        if meta.get("pipeline"):
            found.append(
                self.entity(
                    f"#pipeline-{meta['pipeline']}",
                    {
                        "@type": "IndividualProduct",
                        "name": f"pipeline {meta['pipeline']}",
                        "description": "A named set of components, each under a role.",
                        "hasPart": parts,
                    },
                    {f"role {r}": c for r, c in roles.items()},
                )
            )
        return [*found, *parts, *drivers.values(), self.gantry()]

    # -- the jobs --------------------------------------------------------------

    def sample_and_method(
        self, job: ExportJob, meta: Mapping[str, Any], folder: str
    ) -> list[Entity]:
        """What an instrument job acted on: its sample, and the method it followed."""
        payload = job.row.get("payload") or {}
        sample = dict(meta.get("sample") or payload.get("sample") or {})
        found: list[Entity] = []
        if sample.get("name"):
            extra = {k: v for k, v in sample.items() if k != "name"}
            found.append(
                self.entity(
                    f"#sample-{sample['name']}",
                    {
                        "@type": "Thing",
                        "name": sample["name"],
                        "description": "The sample the job measured.",
                    },
                    extra,
                )
            )
        method = meta.get("method") or payload.get("method") or []
        steps = [
            self.entity(
                f"#job-{job.id}-step-{i + 1}",
                {
                    "@type": "HowToStep",
                    "position": i + 1,
                    "name": t.get("task_name") or f"{t['component_role']}: {t['technique_name']}",
                    "text": json.dumps(t, sort_keys=True),
                },
            )
            for i, t in enumerate(method)
        ]
        method_props = {
            "@type": ["File", "HowTo"],
            "description": "The method: its tasks, in order per component role.",
            "step": steps,
        }
        found.append(self.json_file(method, f"{folder}/method.json", method_props))
        return found

    def script(self, job: ExportJob, folder: str) -> list[Entity]:
        """What ran a command job: its script and its backend."""
        path = self.temp("script.sh")
        path.write_text(job.row.get("spec") or "")
        script = self.file(
            path,
            f"{folder}/script.sh",
            {
                "@type": ["File", "SoftwareSourceCode"],
                "description": "The job's shell script, as submitted (run by bash).",
            },
        )
        backend = self.entity(
            f"#backend-{job.row['backend']}",
            {
                "@type": "SoftwareApplication",
                "name": f"gantry backend {job.row['backend']}",
                "description": "The backend that ran the command jobs' scripts.",
                "version": gantry_version() or "unknown",
                "url": f"{self.api}/backends",
            },
        )
        return [script, backend, self.gantry()]

    def outputs(self, job: ExportJob, folder: str) -> list[Entity]:
        """The declared outputs this run wrote: regular files changed since it started.

        Relative paths are the working directory's. A file older than the run
        (give or take clock skew between a cluster node and the server) is not
        its output, whatever its name: a job that never ran has none.
        """
        started = stamp(job.row.get("started_at"))
        base = job.working_dir
        if started is None or base is None:
            return []
        found: list[Entity] = []
        for declared in job.row.get("outputs") or []:
            path = Path(os.path.normpath(base / declared))
            try:
                if not path.is_file() or path.stat().st_mtime < started - CLOCK_SKEW:
                    continue  # missing, a directory, a device, or left from before
            except OSError:
                continue
            rel = (
                path.relative_to(base)
                if path.is_relative_to(base)
                else Path("_root", *path.parts[1:])
            )
            props = {"description": f"output {declared} of job {job.id}", "identifier": str(path)}
            found.append(self.file(path, f"{folder}/outputs/{rel.as_posix()}", props))
        return found

    def logs(self, job: ExportJob, folder: str) -> list[Entity]:
        return [
            self.file(path, f"{folder}/{stream}.log", {"description": f"the job's {stream}"})
            for stream, path in sorted(job.logs.items())
            if path.is_file()
        ]

    def data_files(self, job: ExportJob, folder: str) -> list[Entity]:
        """NetCDF and CSV of every role that stored samples (none: no data files)."""
        directory, roles = job.data_dir, roles_with_data(job.data_dir)
        if directory is None or not roles:
            return []
        about = f"the samples of roles {', '.join(roles)}"
        nc = netcdf_file(directory, {**job.row, "attempt": max(1, job.row["attempt"])})
        self.made.append(nc)
        csv_path = self.temp("data.csv")
        write_csv(directory, roles, csv_path)
        nc_props = {"description": f"NetCDF4, a group per role: {about}"}
        return [
            self.file(nc, f"{folder}/data.nc", nc_props),
            self.file(csv_path, f"{folder}/data.csv", {"description": f"CSV: {about}"}),
        ]

    def add_job(self, job: ExportJob) -> Entity:
        folder = f"job-{job.id}"
        row = job.row
        if row.get("payload") is not None:
            meta = read_meta(job.data_dir) if job.data_dir else {}
            instrument = self.instrument_of(meta)
            inputs = self.sample_and_method(job, meta, folder)
            results = self.data_files(job, folder)
        else:
            instrument = self.script(job, folder)
            inputs = []
            results = self.outputs(job, folder)
        for upstream in job.depends_on:
            inputs += self.results.get(upstream, [])
        self.results[job.id] = results
        results = results + self.logs(job, folder)
        props: dict[str, Any] = {
            "name": f"job {job.id} ({row['name']})",
            "description": row.get("reason") or f"{row.get('kind', 'command')} job {job.id}",
            "identifier": str(job.id),
            "actionStatus": {"@id": STATUS.get(row["state"], STATUS["failed"])},
        }
        values = {
            "state": row["state"],
            "kind": row.get("kind"),
            "attempt": row.get("attempt"),
            "submitted at": iso(row.get("created_at")),
        }
        props["additionalProperty"] = self.values(f"#job-{job.id}", values)
        if row.get("submitted_by"):
            props["agent"] = self.submitter(row["submitted_by"])
        times = {"startTime": row.get("started_at"), "endTime": row.get("ended_at")}
        props |= {k: iso(v) for k, v in times.items() if v is not None}
        if row["state"] != "completed":
            props["error"] = row.get("reason") or row["state"]
        action = self.crate.add_action(
            instrument, identifier=f"#job-{job.id}", object=inputs, result=results, properties=props
        )
        record = job_record(row, job.depends_on)
        about = {"about": action}
        self.json_file(record, f"{folder}/job.json", {"description": "the job's record", **about})
        events_props = {"description": "the job's state changes, oldest first", **about}
        self.json_file(job.events, f"{folder}/events.json", events_props)
        return action


def build_crate(
    jobs: Sequence[ExportJob], focus: int, api: str, license: str | None = None
) -> Path:
    """Write the crate of ``jobs`` (``focus`` the one asked for) to a temporary zip file.

    The caller deletes the file once sent. Parts are made in a temporary
    folder that is removed here, whatever happens.
    """
    work = Path(tempfile.mkdtemp(prefix=f"gantry-crate-{focus}-"))
    crate = ROCrate(version=RO_CRATE_VERSION, gen_preview=True)  # ro-crate-preview.html, for people
    builder = _Builder(crate, work, api.rstrip("/"))
    try:
        actions = [builder.add_job(job) for job in in_order(jobs)]
        head = next(j for j in jobs if j.id == focus)
        root = builder.crate.root_dataset
        others = len(jobs) - 1
        chain = (
            f" and the {others} other job{'s' if others > 1 else ''} of its chain" if others else ""
        )
        root["name"] = f"gantry job {focus} ({head.row['name']}){chain}"
        root["description"] = (
            f"Data and provenance of gantry job {focus}{chain}: for each job its record, "
            "events and result files; instrument jobs with sample, method, pipeline, devices and "
            "drivers; command jobs with script, logs and declared outputs."
        )
        root["datePublished"] = iso(datetime.now(UTC))
        root["mentions"] = actions
        # A crate must name a licence: without one chosen, it says so (all rights reserved).
        root["license"] = builder.entity(
            license or "#no-licence-chosen",
            {
                "@type": "CreativeWork",
                "name": license.rsplit("/", 1)[-1],
                "description": "The data's licence, as given when the crate was exported.",
            }
            if license
            else {"@type": "CreativeWork", "name": "no licence chosen", "description": UNLICENSED},
        )
        fd, name = tempfile.mkstemp(suffix=".zip", prefix=f"gantry-crate-{focus}-")
        os.close(fd)
        try:
            builder.crate.write_zip(name)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)
    finally:
        for path in builder.made:
            path.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
