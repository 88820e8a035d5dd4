"""Array specs in Slurm's syntax (gantry.jobs.arrays): what they mean, what they refuse."""

from __future__ import annotations

import pytest

from gantry.jobs.arrays import ArraySpecError, parse_array


@pytest.mark.parametrize(
    ("text", "indices", "limit"),
    [
        ("0-4", [0, 1, 2, 3, 4], None),
        ("7", [7], None),
        ("1,3,5-9", [1, 3, 5, 6, 7, 8, 9], None),
        ("0-9:3", [0, 3, 6, 9], None),
        ("0-99%5", list(range(100)), 5),
        ("5-9,1-6", [1, 2, 3, 4, 5, 6, 7, 8, 9], None),  # overlaps count once
        (" 2 , 4 %1", [2, 4], 1),
    ],
)
def test_a_spec_names_its_indices_and_limit(text: str, indices: list[int], limit: int) -> None:
    spec = parse_array(text)
    assert list(spec.indices()) == indices
    assert spec.count == len(indices)
    assert spec.limit == limit


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "the spec is empty"),
        ("   ", "the spec is empty"),
        ("a-b", "'a-b' is not an index or range"),
        ("1,,2", "an item is empty"),
        ("-3", "'-3' is not an index or range"),
        ("0-9:0", "'0-9:0' has a step of 0: a step is 1 or more"),
        ("9-0", "'9-0' ends before it starts"),
        ("0-9%0", "%0 is not a task limit of 1 or more"),
        ("0-9%x", "%x is not a task limit"),
        ("0-100000", "100001 tasks is more than the limit of 100000"),
        ("0-99999,100000-199999", "200000 tasks is more than the limit of 100000"),
        ("0-4294967296", "goes past the largest index"),
    ],
)
def test_a_bad_spec_is_refused_quoting_it_and_the_rule(text: str, says: str) -> None:
    with pytest.raises(ArraySpecError) as caught:
        parse_array(text)
    message = str(caught.value)
    assert message.startswith(f"array {text!r}: ")
    assert says in message


def test_the_task_cap_is_configurable() -> None:
    assert parse_array("0-9", max_tasks=10).count == 10
    with pytest.raises(ArraySpecError, match="11 tasks is more than the limit of 10"):
        parse_array("0-10", max_tasks=10)


def test_a_huge_spec_is_not_expanded_to_be_counted() -> None:
    spec = parse_array("0-99999")
    assert spec.count == 100_000 and spec.ranges == ((0, 99999, 1),)
