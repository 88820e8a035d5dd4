"""Instrument drivers: the driver contract, its runtime, the registry and built-ins.

- ``drivers.interface_2_0``: the versioned contract (``ModelInterface``,
  ``ModelDevice``) and everything a driver author imports;
- ``drivers.types``, ``drivers.units``, ``drivers.validation``: plain data,
  value coercion with pint, task validation;
- ``drivers.registry``: discovery through the ``gantry.drivers`` entry points;
- ``drivers.testing``: the contract check and a driver with injectable faults;
- ``drivers.example_counter``, ``drivers.psutil_driver``: the built-in drivers.

Nothing in this package imports from ``app`` or ``backends``.
"""
