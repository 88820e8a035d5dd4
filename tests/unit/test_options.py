"""gwf/Slurm resource formats."""

from __future__ import annotations

import pytest

from gantry.backends.options import format_walltime, parse_cores, parse_memory, parse_walltime


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("01:00:00", 3600),
        ("30", 1800),
        ("1:30", 90),
        ("2-00:00:00", 172800),
        ("1-2", 93600),
        ("0:0:5", 5),
        ("1-02:03", 93780),
        (5, 300),
    ],
)
def test_walltime_formats(text: object, seconds: int) -> None:
    assert parse_walltime(text) == seconds


@pytest.mark.parametrize("text", ["x", "1:99", "-1", "", "0", "1:2:3:4", "a-01:00", True, 1.5])
def test_malformed_walltimes_say_the_format(text: object) -> None:
    with pytest.raises(ValueError, match=r"walltime .*(HH:MM:SS|year)"):
        parse_walltime(text)


def test_memory_and_cores() -> None:
    assert parse_memory("4g") == 4 << 30
    assert parse_memory("512mb") == 512 << 20
    assert parse_memory("100") == 100 << 20
    assert format_walltime(93784) == "1-02:03:04"
    assert parse_cores("3") == 3
    for bad in ("0", "-2", "many", "9999999"):
        with pytest.raises(ValueError, match="cores"):
            parse_cores(bad)
    for bad in ("4q", "-1g", "0", "2p"):
        with pytest.raises(ValueError, match="memory"):
            parse_memory(bad)
