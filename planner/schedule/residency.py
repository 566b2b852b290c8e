"""Whole-graph residency: which intermediate tensors stay whole in the scratchpad from producer to last consumer.

A per-operator plan stores every intermediate and loads it back for each consumer. Keeping a tensor resident saves
those bytes but takes its whole size for its whole lifetime, out of the room every op in between has for its tiles.
The choice is made for the whole graph at once: candidates go by bytes saved per byte-op of room they hold, and one
is kept only if every op it spans still has its working set next to all the tensors already kept (`working_sets`
gives two policies for how much that is).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from planner.schedule.ir import Kept, Residency
from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block, extents, largest_tile, middle_block, output_dims


def choose_residency(lowered: LoweredGraph, capacity: int, alignment: int, size_of: Callable[[str], int],
                     reserve: Sequence[int], exclude: frozenset[str] = frozenset(),
                     units: Sequence[tuple[int, int]] | None = None) -> Residency:
    """Greedy whole-graph choice and placement of resident intermediates under `capacity` bytes per partition.

    `size_of(tensor)` is the whole tensor's aligned bytes per partition; `reserve[i]` the room statement i keeps
    for its tiles. Each kept tensor is placed first-fit from the top among the kept tensors whose lifetimes overlap
    its own (offsets in bytes per partition, from the top of the scratchpad down), and only if every op it spans
    keeps its reserve in one piece below. `units[i]` is the range of
    statements staged together with statement i (a fusion group runs its ops tile by tile, so a tensor one of them
    touches lives for the whole group).
    """
    statements = lowered.statements
    graph = lowered.graph
    first_write: dict[str, int] = {}
    last_use: dict[str, int] = {}
    consumers: dict[str, int] = {}
    for index, stmt in enumerate(statements):
        begin, end = units[index] if units else (index, index)
        for access in stmt.writes:
            first_write.setdefault(access.tensor, begin)
            last_use[access.tensor] = max(last_use.get(access.tensor, end), end)
        for tensor in stmt.tensors_read:
            if tensor in first_write:
                last_use[tensor] = max(last_use[tensor], end)
                consumers[tensor] = consumers.get(tensor, 0) + 1
    room = [capacity] * len(statements)
    kept: dict[str, tuple[int, int]] = {}
    offsets: dict[str, int] = {}
    sizes: dict[str, int] = {}
    candidates = [t for t in first_write if consumers.get(t) and t not in exclude]

    def value(tensor: str) -> float:
        saved = graph.tensor_bytes(tensor) * (consumers[tensor] + (tensor not in lowered.graph.outputs))
        return saved / (size_of(tensor) * (last_use[tensor] - first_write[tensor] + 1))

    for tensor in sorted(candidates, key=lambda t: (-value(t), t)):
        size, span = size_of(tensor), (first_write[tensor], last_use[tensor])
        neighbours = [(offsets[t], offsets[t] + sizes[t]) for t, (a, b) in kept.items()
                      if a <= span[1] and span[0] <= b]
        offset = (capacity - size) // alignment * alignment
        # First fit from the top: step below the highest neighbour in the way until none is. (Neighbours may
        # overlap one another in address, when they do not in time, so no one order of them can be walked once.)
        while clashes := [start for start, end in neighbours if start < offset + size and offset < end]:
            offset = (max(clashes) - size) // alignment * alignment
        if all(offset >= reserve[i] and offset >= 0 for i in range(span[0], span[1] + 1)):
            kept[tensor], offsets[tensor], sizes[tensor] = span, offset, size
            for i in range(span[0], span[1] + 1):
                room[i] = min(room[i], offset)
    return Residency(tuple(Kept(t, *kept[t], offsets[t], sizes[t]) for t in kept), tuple(room))


def working_sets(lowered: LoweredGraph, capacity: int, cost: Callable[[Statement, Block], int],
                 ) -> dict[str, list[int]]:
    """Two policies for the room each op keeps for its tiles, with the resident tensors taking the rest.

    - "baseline-tiles": the room of the tile the op would get alone, so that no op tiles smaller (and reloads more)
      than in the baseline; residency then only fills the slack.
    - "half" and "quarter": up to that share of the scratchpad (less if the whole op needs less), which keeps more
      tensors on chip at the price of smaller tiles in the ops they span.
    """
    alone, half, quarter = [], [], []
    for stmt in lowered.statements:
        whole = {dim: hi - lo for dim, (lo, hi) in extents(stmt).items() if dim in output_dims(stmt)}
        least = cost(stmt, middle_block(stmt, {dim: 1 for dim in whole}))
        tile = largest_tile(stmt, functools.partial(cost, stmt), capacity)
        alone.append(max(least, cost(stmt, middle_block(stmt, tile))) if tile else capacity)
        everything = cost(stmt, middle_block(stmt, whole))
        half.append(max(least, min(capacity // 2, everything)))
        quarter.append(max(least, min(capacity // 4, everything)))
    return {"baseline-tiles": alone, "half": half, "quarter": quarter}
