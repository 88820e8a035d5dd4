"""Backends written for gwf (entry-point group ``gwf.backends``), run unmodified.

Each installed gwf backend ``NAME`` is offered as the gantry backend
``gwf-NAME``, started only when enabled (see docs/migrate-from-gwf.md).
"""

from gantry.backends.gwf_host.backend import GwfHostedBackend, hosted

__all__ = ["GwfHostedBackend", "hosted"]
