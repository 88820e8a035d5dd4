"""The ``local`` backend: command jobs as processes on the server's machine."""

from gantry.backends.local.backend import LocalBackend

__all__ = ["LocalBackend"]
