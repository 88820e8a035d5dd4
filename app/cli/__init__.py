"""The ``gantry`` command line: talks to the server over HTTP (``serve``,
``config`` and ``db`` act locally). Entry point: :func:`gantry.cli.main.main`."""
