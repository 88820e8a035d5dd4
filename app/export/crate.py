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
  exist as regular files, and its stdout and stderr.

Every job also has its record (``job.json``) and its events (``events.json``).
Files are copied from disk into the zip in chunks, never held in memory. The
functions are sync: run them on a worker thread.
"""

from __future__ import annotations

import json
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The rocrate library ships no type information.
from rocrate.model.contextentity import ContextEntity  # type: ignore[import-untyped]
from rocrate.model.entity import Entity  # type: ignore[import-untyped]
from rocrate.rocrate import ROCrate  # type: ignore[import-untyped]

from gantry.export.chain import ExportJob, in_order
from gantry.export.parts import (
    FORMATS,
    STATUS,
    gantry_version,
    iso,
    job_record,
    json_default,
    package_url,
    properties,
    roles_with_data,
    write_csv,
)
from gantry.instruments.data import read_meta
from gantry.instruments.export import netcdf_file

#: The context of 1.3 ships with the rocrate library, so validators can check it offline;
#: the conventions used (CreateAction, instrument, ...) are those of 1.1, unchanged.
RO_CRATE_VERSION = "1.3"
UNLICENSED = (
    "Whoever exported this crate chose no licence (gantry's license parameter): "
    "until one is given, all rights are reserved by the data's owners."
)


@dataclass(slots=True)
class _Builder:
    crate: ROCrate
    work: Path
    #: the API of the server making the crate: the ``url`` of software with no home of its own
    api: str
    #: temporary files made here (NetCDF, CSV, JSON), removed once the zip is written
    made: list[Path] = field(default_factory=list)
    #: job id -> the files it produced (what a dependent job read)
    results: dict[int, list[Entity]] = field(default_factory=dict)

    def entity(
        self, identifier: str, props: dict[str, Any], values: Mapping[str, Any] | None = None
    ) -> Entity:
        """The contextual entity ``identifier``, made once; ``values`` its additionalProperty."""
        found = self.crate.get(identifier)
        if found is not None:
            return found
        if values:
            props["additionalProperty"] = self.values(identifier, values)
        return self.crate.add(ContextEntity(self.crate, identifier, properties=props))

    def values(self, owner: str, values: Mapping[str, Any]) -> list[Entity]:
        return [self.entity(v.pop("@id"), v) for v in properties(owner, values)]

    def file(self, source: Path, dest: str, props: dict[str, Any]) -> Entity:
        fmt = FORMATS.get(Path(dest).suffix) or mimetypes.guess_type(dest)[0]
        props = {
            "name": Path(dest).name,
            "encodingFormat": fmt or "application/octet-stream",
            "contentSize": str(source.stat().st_size),
            **props,
        }
        return self.crate.add_file(source=source, dest_path=dest, properties=props)

    def temp(self, name: str) -> Path:
        fd, path = tempfile.mkstemp(prefix="part-", suffix=Path(name).suffix, dir=self.work)
        os.close(fd)
        return Path(path)

    def json_file(self, value: Any, dest: str, props: dict[str, Any]) -> Entity:
        path = self.temp(dest)
        path.write_text(json.dumps(value, indent=2, default=json_default) + "\n")
        return self.file(path, dest, props)

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
                "description": "The job's shell script, as submitted.",
                "programmingLanguage": "bash",
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
        """The declared outputs that are regular files now (relative: to the working dir)."""
        found: list[Entity] = []
        base = job.working_dir
        for declared in job.row.get("outputs") or []:
            path = Path(os.path.normpath(base / declared)) if base else Path(declared)
            if not path.is_absolute() or not path.is_file():
                continue  # missing, a directory, a device...: only regular files are data
            inside = base is not None and path.is_relative_to(base)
            rel = path.relative_to(base) if inside and base else Path("_root", *path.parts[1:])
            found.append(
                self.file(
                    path,
                    f"{folder}/outputs/{rel.as_posix()}",
                    {"description": f"output {declared} of job {job.id}", "identifier": str(path)},
                )
            )
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
    builder = _Builder(ROCrate(version=RO_CRATE_VERSION), work, api.rstrip("/"))
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
            {"@type": "CreativeWork", "name": license.rsplit("/", 1)[-1]}
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
