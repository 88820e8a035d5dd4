"""What the batch-scheduler backends (``slurm``, ``sge``) share: running the
scheduler's commands, the submit retry loop, and the poller's bookkeeping."""
