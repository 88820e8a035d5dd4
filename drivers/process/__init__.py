"""Drivers out of process, as tomato runs them: one process per driver, supervised.

- :class:`DriverProcess` is the driver the server holds: the same contract
  as any ``ModelInterface``, every call forwarded to the driver's process;
  its ``run`` restarts the process when it dies, blocks or leaks;
- ``python -m gantry.drivers.process.worker`` is that process;
- the channel (:mod:`.wire`) is a socket pair the process inherits, carrying
  length-prefixed JSON (never pickle); :mod:`.codec` turns each call's data
  into plain JSON and back.
"""

from gantry.drivers.process.child import ProcessOptions
from gantry.drivers.process.logs import log_file, logging_config
from gantry.drivers.process.proxy import DriverProcess
from gantry.drivers.process.spec import spec_for

__all__ = ["DriverProcess", "ProcessOptions", "log_file", "logging_config", "spec_for"]
