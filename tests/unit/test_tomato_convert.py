"""tomato's xarray data and Attrs in gantry's shapes: every point, every unit."""

from __future__ import annotations

import numpy as np
import pint
import xarray as xr
from tomato.driverinterface_2_1 import Attr as TomatoAttr

from gantry.drivers.tomato_host.convert import SampleMaker, gantry_attr, magnitude


def test_each_uts_row_is_one_sample_with_its_units() -> None:
    data = xr.Dataset(
        {
            "val": (["uts"], [1, 2, 3]),
            "param": (["uts"], [0.5, 0.5, 0.5], {"units": "second"}),
            "mode": (["uts"], ["a", "b", "c"]),
        },
        coords={"uts": (["uts"], [10.0, 11.0, 12.5])},
    )
    made = SampleMaker().samples(data, "t1")
    assert [s.uts for s in made] == [10.0, 11.0, 12.5]
    assert [s.values for s in made] == [
        {"val": 1, "param": 0.5, "mode": "a"},
        {"val": 2, "param": 0.5, "mode": "b"},
        {"val": 3, "param": 0.5, "mode": "c"},
    ]
    assert all(type(s.values["val"]) is int for s in made)
    assert made[0].units == {"param": "second"} and made[0].units is made[2].units
    assert {s.task_id for s in made} == {"t1"}


def test_a_two_dimensional_variable_keeps_every_point_and_its_coordinate() -> None:
    abscissa = np.linspace(0, 1, 4)
    data = xr.Dataset(
        {"ordinate": (["uts", "abscissa"], [[0, 1, 2, 3], [4, 5, 6, 7]], {"units": "V"})},
        coords={"uts": (["uts"], [1.0, 2.0]), "abscissa": (["abscissa"], abscissa)},
    )
    second = SampleMaker().samples(data)[1]
    assert [second.values[f"ordinate[{i}]"] for i in range(4)] == [4, 5, 6, 7]
    assert [second.values[f"abscissa[{i}]"] for i in range(4)] == list(abscissa)
    assert second.units == {f"ordinate[{i}]": "V" for i in range(4)}


def test_no_data_is_no_samples_and_a_dataset_without_uts_is_one() -> None:
    maker = SampleMaker()
    assert maker.samples(None) == [] and maker.last(None) is None
    one = maker.samples(xr.Dataset({"t": ((), 21.5, {"units": "degC"})}))
    assert len(one) == 1 and one[0].values == {"t": 21.5} and one[0].units == {"t": "degC"}


def test_attrs_with_pint_limits_and_quantity_values_become_numbers_in_their_units() -> None:
    attr = gantry_attr(
        TomatoAttr(type=pint.Quantity, rw=True, units="seconds", minimum=pint.Quantity("100 ms"))
    )
    assert (attr.type, attr.units, attr.minimum, attr.maximum) == (float, "seconds", 0.1, None)
    options = gantry_attr(TomatoAttr(type=str, rw=True, status=True, options={"a", "b"}))
    assert options.options == frozenset({"a", "b"}) and options.status
    assert magnitude(pint.Quantity("1.5 min"), "seconds") == 90
    assert magnitude(np.float64(2.5)) == 2.5 and magnitude("x") == "x"
    assert magnitude(pint.Quantity("2 kg"), "seconds") == 2  # not convertible: as given
