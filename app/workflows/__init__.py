"""gwf workflow files, loaded with gwf's own machinery, as gantry job batches.

No HTTP here: the CLI (``gantry run``) and the API (``POST /api/v1/workflows``)
both call :func:`~gantry.workflows.loader.plan_workflow` and submit what it
returns through the job service.
"""
