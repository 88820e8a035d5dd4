"""Array specs in Slurm's syntax: ``0-999``, ``1,3,5-9``, ``0-999:2``, ``0-99%10``.

A spec is a comma-separated list of items, each an index ``N``, a range
``A-B`` (both ends included) or a stepped range ``A-B:S``, optionally followed
by ``%K``: at most K tasks at once. Indices are kept as the ranges given, never
expanded into a list, so a 100,000-task spec costs a few tuples.
"""

from __future__ import annotations

import re

from gantry.backends.base import ArraySpec

#: How many tasks one array may have unless the server is told otherwise.
DEFAULT_MAX_TASKS = 100_000
#: The largest index (Slurm's task ids are 32-bit).
MAX_INDEX = 2**31 - 2

_ITEM = re.compile(r"([0-9]+)(?:-([0-9]+)(?::([0-9]+))?)?")
RULE = (
    "an array is indices N, ranges A-B or stepped ranges A-B:S (S >= 1), separated by "
    "commas, optionally ending in %K (at most K tasks at once), e.g. 0-99%10 or 1,3,5-9"
)


class ArraySpecError(ValueError):
    """A spec that is not one; the message quotes it and names the rule it breaks."""

    def __init__(self, spec: str, problem: str) -> None:
        super().__init__(f"array {spec!r}: {problem}")
        self.spec = spec


def parse_array(text: str, max_tasks: int = DEFAULT_MAX_TASKS) -> ArraySpec:
    """Parse and check ``text``; raises :class:`ArraySpecError` quoting it and the rule."""
    spec = text.strip()
    if not spec:
        raise ArraySpecError(text, f"the spec is empty: {RULE}")
    body, percent, limit_text = spec.partition("%")
    limit: int | None = None
    if percent:
        if not limit_text.isdigit() or int(limit_text) < 1:
            raise ArraySpecError(text, f"%{limit_text} is not a task limit of 1 or more: {RULE}")
        limit = int(limit_text)
    ranges: list[tuple[int, int, int]] = []
    for item in body.split(","):
        match = _ITEM.fullmatch(item.strip())
        if match is None:
            what = f"{item!r} is not an index or range" if item.strip() else "an item is empty"
            raise ArraySpecError(text, f"{what}: {RULE}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3)) if match.group(3) is not None else 1
        if step == 0:
            raise ArraySpecError(text, f"{item.strip()!r} has a step of 0: a step is 1 or more")
        if last < first:
            raise ArraySpecError(text, f"{item.strip()!r} ends before it starts: A-B needs A <= B")
        if last > MAX_INDEX:
            raise ArraySpecError(text, f"{item.strip()!r} goes past the largest index {MAX_INDEX}")
        ranges.append((first, last, step))
    count = _count(ranges, max_tasks, text)
    return ArraySpec(spec, tuple(ranges), limit, count)


def parse_stored(text: str) -> ArraySpec:
    """A spec checked when its job was submitted (under whatever cap applied then)."""
    return parse_array(text, max_tasks=MAX_INDEX + 1)


def _count(ranges: list[tuple[int, int, int]], max_tasks: int, text: str) -> int:
    """Distinct indices, refusing more than ``max_tasks`` before building any set."""
    upper = sum(len(range(a, b + 1, s)) for a, b, s in ranges)
    if upper > max_tasks and len(ranges) == 1:
        raise ArraySpecError(text, f"{upper} tasks is more than the limit of {max_tasks}")
    if len(ranges) == 1:
        return upper
    if upper > 10 * max_tasks:
        raise ArraySpecError(text, f"over {max_tasks} tasks, more than the limit of {max_tasks}")
    count = len({i for a, b, s in ranges for i in range(a, b + 1, s)})
    if count > max_tasks:
        raise ArraySpecError(text, f"{count} tasks is more than the limit of {max_tasks}")
    return count
