"""A job's log files, opened by the server for its supervisor to inherit."""

from __future__ import annotations

import os

from gantry.backends.base import JobSubmission


def open_logs(job: JobSubmission) -> tuple[int, int]:
    """The job's stdout and stderr files, opened to append (made, with parents, if need be)."""
    stdout_path = os.path.abspath(job.stdout_path)
    stderr_path = os.path.abspath(job.stderr_path)
    stdout = _open_append(stdout_path)
    if stderr_path == stdout_path:
        return stdout, stdout
    try:
        return stdout, _open_append(stderr_path)
    except OSError:
        os.close(stdout)
        raise


def _open_append(path: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o666)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return os.open(path, flags, 0o666)
