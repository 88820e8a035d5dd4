"""An instrument job's NetCDF file (one group per role) as ``xarray.Dataset`` objects.

xarray loads only here, when data is asked for: the rest of the client (and
the CLI) starts without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import xarray as xr


def open_netcdf(content: bytes, name: str) -> dict[str, xr.Dataset]:
    """Role -> its dataset, loaded into memory; the root group's attributes (job,
    pipeline, sample, method) are added to each role's own (device, driver, ...)."""
    import netCDF4
    import xarray as xr

    with netCDF4.Dataset(name, mode="r", memory=content) as nc:
        root = {key: nc.getncattr(key) for key in nc.ncattrs()}
        found: dict[str, xr.Dataset] = {}
        for role in nc.groups:
            store = xr.backends.NetCDF4DataStore(nc, group=role)  # type: ignore[no-untyped-call]
            dataset = xr.open_dataset(store).load()
            dataset.attrs = {**root, **dataset.attrs}
            found[role] = dataset
    return found
