"""Dependencies inside one batch: by name, and gwf-style by inputs/outputs.

A job that lists as input a path another job of the batch outputs runs after
it. Relative paths are taken from the job's working directory. Everything
wrong is reported at once, naming the jobs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass


class GraphError(ValueError):
    """The batch's dependencies cannot be satisfied; ``loc`` names the field."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    after_names: Sequence[str]
    inputs: Sequence[str]
    outputs: Sequence[str]
    working_dir: str


def _absolute(path: str, working_dir: str) -> str:
    return os.path.normpath(os.path.join(working_dir, path))


def resolve(nodes: Sequence[Node]) -> list[list[int]]:
    """For each node, the indexes of the nodes it runs after; raises GraphError."""
    index: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node.name in index:
            raise GraphError(
                ("jobs", i, "name"),
                f"job name {node.name!r} is used by jobs #{index[node.name]} and #{i} of the "
                "batch: names must be unique within a batch",
            )
        index[node.name] = i

    producers: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for path in node.outputs:
            full = _absolute(path, node.working_dir)
            other = producers.setdefault(full, i)
            if other != i:
                raise GraphError(
                    ("jobs", i, "outputs"),
                    f"output {full} is produced by both {nodes[other].name!r} and "
                    f"{node.name!r}: give each output a single producer",
                )

    edges: list[list[int]] = []
    for i, node in enumerate(nodes):
        if not node.after_names and not (producers and node.inputs):
            edges.append([])
            continue
        after: set[int] = set()
        for name in node.after_names:
            if name not in index:
                raise GraphError(
                    ("jobs", i, "depends_on"),
                    f"job {node.name!r} depends on {name!r}, which is not in this batch: "
                    "use a job id for jobs submitted earlier",
                )
            after.add(index[name])
        for path in node.inputs:
            producer = producers.get(_absolute(path, node.working_dir))
            if producer is not None and producer != i:
                after.add(producer)
        edges.append(sorted(after))
    if any(edges):
        _reject_cycles(nodes, edges)
    return edges


def _reject_cycles(nodes: Sequence[Node], edges: Sequence[Sequence[int]]) -> None:
    # Kahn's algorithm; whatever cannot be ordered lies on or behind a cycle.
    waiting = [len(after) for after in edges]
    dependents: list[list[int]] = [[] for _ in nodes]
    for i, after in enumerate(edges):
        for j in after:
            dependents[j].append(i)
    ready = [i for i, n in enumerate(waiting) if n == 0]
    while ready:
        j = ready.pop()
        for i in dependents[j]:
            waiting[i] -= 1
            if waiting[i] == 0:
                ready.append(i)
    stuck = [i for i, n in enumerate(waiting) if n > 0]
    if stuck:
        names = ", ".join(repr(nodes[i].name) for i in stuck[:10])
        raise GraphError(
            ("jobs", stuck[0], "depends_on"),
            f"dependency cycle among jobs {names}: remove one of their dependencies",
        )
