"""Which runs of ops become fusion groups, and how each is tiled (the groups themselves: planner.groups).

Groups end at cut points, where the only live tensor is the complete output of the op before the cut (a residual
block's output, the end of a conv -> BN -> ReLU chain). Runs between cut points are merged greedily while the merged
run still fits one tiling in the budget and recomputes no more than its parts did; each run's tile is the largest
that fits, tried along the batch first and then along rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from planner.groups import Group, NotCacheable, recompute_ratio, sink_tensor, tensor_uses
from planner.stmt import LoweredGraph
from planner.working_set import working_set

MAX_RECOMPUTE = 1.25  # a recomputing group may do at most this much of its work again
MERGE_SLACK = 0.0  # merging two runs may add this much recomputed work


def cut_points(lowered: LoweredGraph) -> list[int]:
    """Positions p (a cut between statement p-1 and p) where the only activation crossing is the output of
    statement p-1, complete (no later piece of a Concat writes it) and not a model output: the boundaries a group
    may end at, or start from."""
    statements = lowered.statements
    outputs = {lowered.base(name) for name in lowered.graph.outputs}
    last_use: dict[str, int] = {}
    last_write: dict[str, int] = {}
    for index, stmt in enumerate(statements):
        for tensor in stmt.tensors_read:
            last_use[tensor] = index
        last_write[sink_tensor(stmt)] = index
    for tensor in outputs:
        last_use[tensor] = len(statements)
    cuts = []
    live: set[str] = set()
    for index, stmt in enumerate(statements):
        produced_here = sink_tensor(stmt)
        live = {t for t in live if last_use.get(t, -1) > index or last_write[t] > index}
        live.add(produced_here)
        if live <= {produced_here} and last_write[produced_here] == index and (
                produced_here not in outputs or index == len(statements) - 1):
            cuts.append(index + 1)
    return cuts


def is_closed(lowered: LoweredGraph, first: int, last: int) -> bool:
    """Whether statements first..last can run as one group: every tensor they write is written only by them, and
    only the last one's output is read after them or is a model output."""
    readers, writers, outputs = tensor_uses(lowered)
    sink = sink_tensor(lowered.statements[last])
    for tensor in {sink_tensor(stmt) for stmt in lowered.statements[first:last + 1]}:
        if writers[tensor][0] < first or writers[tensor][-1] > last:  # written outside the range too
            return False
        if tensor != sink and (tensor in outputs or readers.get(tensor, (-1,))[-1] > last):  # read after the range
            return False
    return True


def candidate_tiles(shape: tuple[int, ...]) -> list[tuple[tuple[int, ...], bool]]:
    """Tiles to try, largest first, with whether caching can apply: the batch halved down to 1, then (for an
    NCHW tensor) its rows halved with one image per tile. Caching needs one tiled axis."""
    if not shape:
        return [((), False)]  # a scalar (a DynamicQuantizeLinear scale) is one tile
    found: list[tuple[tuple[int, ...], bool]] = []
    size = shape[0]
    while True:
        found.append(((size, *shape[1:]), False))
        if size == 1:
            break
        size = -(-size // 2)
    if len(shape) == 4 and shape[2] > 1:
        rows = -(-shape[2] // 2)
        while True:
            found.append(((1, shape[1], rows, shape[3]), shape[0] == 1))
            if rows == 1:
                break
            rows = -(-rows // 2)
    return found


def fit(lowered: LoweredGraph, first: int, last: int, budget: int,
        partition_bytes: Callable[[str, tuple[int, ...]], int]) -> Group | None:
    """The best tiling of statements first..last as one group under `budget` bytes per partition, or None.

    Tiles are tried largest first; a tile that recomputes is kept if it recomputes at most MAX_RECOMPUTE of the
    work, and a tile that caches if its whole intermediates fit. The first tile that fits wins: fewer tiles read
    fewer halos and fewer copies of the inputs.
    """
    if not is_closed(lowered, first, last):
        return None
    if any(stmt.indirect for stmt in lowered.statements[first:last + 1]):
        return None  # a group's steps are computes; an indirect DMA is staged on its own
    sink = sink_tensor(lowered.statements[last])
    for tile, cacheable in candidate_tiles(lowered.graph.tensors[sink].shape):
        options = [Group(first, last, tile, False)]
        if cacheable:
            options.insert(0, Group(first, last, tile, True))
        for group in options:
            try:
                if working_set(lowered, group, partition_bytes) > budget:
                    continue
                if not group.cache and recompute_ratio(lowered, group) > MAX_RECOMPUTE:
                    continue
            except NotCacheable:
                continue
            return group
    return None


def choose_groups(lowered: LoweredGraph, budget: int,
                  partition_bytes: Callable[[str, tuple[int, ...]], int]) -> list[Group]:
    """Groups over the whole graph: runs between cut points, merged greedily while the merged run still fits one
    tiling in `budget` and recomputes no more than its parts did. A run that fits no tiling is left to per-op
    staging."""
    cuts = sorted({0, *cut_points(lowered), len(lowered.statements)})
    groups: list[Group] = []
    current: Group | None = None
    for start, stop in itertools.pairwise(cuts):
        alone = fit(lowered, start, stop - 1, budget, partition_bytes)
        merged = fit(lowered, current.first, stop - 1, budget, partition_bytes) if current and alone else None
        if merged is not None and current is not None and alone is not None and (
                _ratio(lowered, merged) <= max(_ratio(lowered, current), _ratio(lowered, alone)) + MERGE_SLACK):
            current = merged
            continue
        if current is not None and current.last > current.first:
            groups.append(current)
        current = alone
    if current is not None and current.last > current.first:
        groups.append(current)
    return groups


def _ratio(lowered: LoweredGraph, group: Group) -> float:
    return 1.0 if group.cache else recompute_ratio(lowered, group)
