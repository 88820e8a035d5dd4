"""Instrument drivers: the driver contract, its runtime, the registry and built-ins.

- ``gantry.drivers.interface_2_0``: the versioned contract (``ModelInterface``,
  ``ModelDevice``) and everything a driver author imports;
- ``gantry.drivers.types``, ``gantry.drivers.units``, ``gantry.drivers.validation``: plain data,
  value coercion with pint, task validation;
- ``gantry.drivers.registry``: discovery through the ``gantry.drivers`` entry points;
- ``gantry.drivers.testing``: the contract check and a driver with injectable faults;
- ``gantry.drivers.example_counter``, ``gantry.drivers.psutil_driver``: the built-in drivers.

Nothing in this package imports from ``app`` or ``backends``.
"""
