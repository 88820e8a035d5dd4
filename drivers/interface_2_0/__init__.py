"""Driver interface 2.0: the async form of tomato's DriverInterface 2.x.

A driver targets exactly one interface version, so a 3.0 can sit beside this
one. Everything a driver author needs is importable from here::

    from gantry.drivers.interface_2_0 import Attr, ModelDevice, ModelInterface, Task
"""

from gantry.drivers.errors import AttrError, DriverError, TaskInvalid, TaskTimeout
from gantry.drivers.interface_2_0.device import ModelDevice
from gantry.drivers.interface_2_0.interface import ModelInterface, TaskListener
from gantry.drivers.interface_2_0.run import TaskRun
from gantry.drivers.types import Attr, Key, Reply, Sample, Task, TaskInfo, TaskState, Value

__all__ = [
    "Attr",
    "AttrError",
    "DriverError",
    "Key",
    "ModelDevice",
    "ModelInterface",
    "Reply",
    "Sample",
    "Task",
    "TaskInfo",
    "TaskInvalid",
    "TaskListener",
    "TaskRun",
    "TaskState",
    "TaskTimeout",
    "Value",
]
