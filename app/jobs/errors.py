"""What the job layer refuses, in words: the API maps each to a status code.

No HTTP here. A :class:`SubmissionError`'s ``field`` is the path of the
offending field within what was submitted (``("jobs", 2, "backend")``), not
where a web framework found it; the API adds its own prefix.
"""

from __future__ import annotations

FieldPath = tuple[str | int, ...]


class SubmissionError(ValueError):
    """A submitted job is not valid; the message names the problem and the fix."""

    def __init__(self, field: FieldPath, message: str) -> None:
        super().__init__(message)
        self.field = field


class JobNotFound(LookupError):
    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} does not exist")
        self.job_id = job_id


class JobAlreadyEnded(RuntimeError):
    def __init__(self, job_id: int, state: str) -> None:
        super().__init__(f"job {job_id} already ended: it is {state}")
        self.job_id = job_id
        self.state = state


class TaskNotFound(JobNotFound):
    """An array job has no task of that index (or the job is not an array)."""

    def __init__(self, job_id: int, index: int, why: str) -> None:
        LookupError.__init__(self, f"job {job_id} has no task {index}: {why}")
        self.job_id = job_id


class TaskNotCancellable(JobAlreadyEnded):
    """A task that ended, or whose array has not been handed to its backend yet."""

    def __init__(self, job_id: int, index: int, state: str, why: str) -> None:
        RuntimeError.__init__(self, f"task {index} of job {job_id} {why}")
        self.job_id = job_id
        self.state = state


__all__ = [
    "FieldPath",
    "JobAlreadyEnded",
    "JobNotFound",
    "SubmissionError",
    "TaskNotCancellable",
    "TaskNotFound",
]
