"""Exports of jobs with their metadata: RO-Crates of a job and its chain."""
