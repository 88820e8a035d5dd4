"""The ``sge`` backend: command jobs as (Son of) Grid Engine jobs (qsub, qstat, qacct)."""

from gantry.backends.sge.backend import SgeBackend

__all__ = ["SgeBackend"]
