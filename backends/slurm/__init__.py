"""The ``slurm`` backend: command jobs as Slurm batch jobs (sbatch, squeue, sacct)."""

from gantry.backends.slurm.backend import SlurmBackend

__all__ = ["SlurmBackend"]
