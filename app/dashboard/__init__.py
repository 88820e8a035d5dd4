"""The web dashboard: static HTML/JS/CSS served by the API server itself.

The page talks to the REST API under ``/api/v1`` like any other client; it
holds no scheduling logic and loads nothing from the network but this server.
"""

from gantry.dashboard.router import router

__all__ = ["router"]
