"""The backend's view of a job: one :class:`JobSubmission` per attempt.

It is built once, when the attempt is first looked at (``hold``), and the
same object goes to ``submit`` and, after a restart, to ``adopt``.
"""

from __future__ import annotations

import os
from pathlib import Path

from gantry.backends.base import Backend, JobSubmission
from gantry.jobs.active import ActiveJob
from gantry.jobs.arrays import parse_stored

#: Variables of the server's environment a job inherits; the rest stays out.
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "USER", "LOGNAME", "SHELL", "TMPDIR", "TZ")


class Handover:
    def __init__(self, work_dir: Path) -> None:
        #: where a job without a working_dir starts
        self.work_dir = work_dir
        self._base_env = {k: os.environ[k] for k in INHERITED_ENV if k in os.environ}

    def submission(self, job: ActiveJob, backend: Backend, attempt: int) -> JobSubmission:
        """Attempt ``attempt`` of ``job`` as ``backend`` gets it (kept on the job).

        Calls ``backend.logs``: plug-in code, so callers guard it.
        """
        built = job.submission
        if built is not None and built.attempt == attempt:
            return built
        spec = job.spec
        env = {
            **self._base_env,
            "GANTRY_JOB_ID": str(job.id),
            "GANTRY_JOB_NAME": spec.name,
            "GANTRY_ATTEMPT": str(attempt),
            **spec.env,
        }
        built = job.submission = JobSubmission(
            job_id=job.id,
            attempt=attempt,
            name=spec.name,
            spec=spec.spec or "",
            options=dict(spec.options),  # the backend's own copy
            env=env,
            working_dir=Path(spec.working_dir) if spec.working_dir else self.work_dir,
            priority=spec.priority,
            stdout_path=backend.logs(job.id, attempt, "stdout"),
            stderr_path=backend.logs(job.id, attempt, "stderr"),
            payload=spec.payload,
            array=parse_stored(spec.array) if spec.array is not None else None,
        )
        return built
