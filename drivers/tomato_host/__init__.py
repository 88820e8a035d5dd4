"""tomato driver packages, unmodified, as gantry drivers.

A devices file names one as ``driver = "tomato:example_counter"`` (or by its
package ``tomato-example-counter``, or module ``tomato_example_counter``);
the registry resolves it with :func:`resolve_tomato_driver`. Interface
versions 2.0 and 2.1 of tomato 2.2 are supported.
"""

from gantry.drivers.tomato_host.driver import TomatoDriver, tomato_driver_class
from gantry.drivers.tomato_host.loader import (
    TomatoDriverError,
    is_tomato_name,
    load_tomato_class,
    module_name,
)


def resolve_tomato_driver(name: str) -> type[TomatoDriver]:
    """The gantry driver class for tomato driver ``name``; TomatoDriverError says why not."""
    cls, version = load_tomato_class(name)
    return tomato_driver_class(name, cls, version)


__all__ = [
    "TomatoDriver",
    "TomatoDriverError",
    "is_tomato_name",
    "module_name",
    "resolve_tomato_driver",
]
