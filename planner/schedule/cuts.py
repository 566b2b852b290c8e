"""Fusion groups by dynamic programming over the program order.

The graph is cut at boundaries where few complete activations cross (planner.schedule.boundaries: at most two by
default, only one at planner.group_choice.cut_points). A run of consecutive intervals between boundaries may become
one group; `best_groups` picks the runs and each run's tiling that minimise the whole graph's cost, by dynamic
programming: best[j] = min over i < j of best[i] + the cheaper of the run i..j as a group and its ops alone. Each run
is priced on a timeline of its own (planner.schedule.cost), bytes first, then cycles; a group estimated (scaled by
GROUP_ESTIMATE_MARGIN) more than CYCLES_SLACK slower than its ops alone is not taken, so the groups never trade the
baseline's speed for bytes. Tiles (planner.schedule.boundaries.group_tiles): the batch, then rows, over divisors and
near-divisors of the extent (ceil(extent / n)), not only halvings; each caching, or recomputing with two tiles in
flight, or with one (a larger tile that fits only once: fewer halos, no DMA ahead of compute). Where none of those
fits (the weights do not fit whole), tiles of the sink's channels (`channel_tiles`) with the weights streamed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from planner.group_choice import MAX_RECOMPUTE, is_closed
from planner.groups import Group, NotCacheable, recompute_ratio, sink_tensor
from planner.schedule.boundaries import channel_tiles, group_boundaries, group_tiles
from planner.schedule.cost import price_group, price_op
from planner.schedule.ir import GroupSchedule, group_schedule
from planner.schedule.op_choice import op_tiling
from planner.schedule.timeline import Timeline
from planner.staging.room import staged_room
from planner.stmt import LoweredGraph
from planner.tiling import middle_block, tile_boxes
from planner.working_set import working_set
from simulator.machine import MachineConfig

MAX_SPAN = 3  # a group spans at most this many intervals between cut points,
MAX_STATEMENTS = 12  # or at most this many statements (where cut points come close together: every one is a cut)
MAX_TILES = 4  # tile shapes tried per run
CYCLES_SLACK = 1.01
GROUP_ESTIMATE_MARGIN = 1.0  # as planner.schedule.search's

Cost = tuple[int, int]  # (DRAM bytes, cycles)


def best_groups(lowered: LoweredGraph, machine: MachineConfig, budget: int,
                partition_bytes: Callable[[str, tuple[int, ...]], int],
                memo: dict[tuple[object, ...], Any] | None = None, boundaries: list[int] | None = None,
                ) -> tuple[Group, ...]:
    """The groups (runs of at least two statements) of the cheapest whole-graph cover; see the module docstring.
    `boundaries` are the positions a group may begin or end at (planner.schedule.boundaries.group_boundaries when
    not given). `memo` keeps what does not depend on the budget or the boundaries (each group's working set,
    recompute ratio and price, each op's price alone) for the next call on the same graph and machine."""
    statements = lowered.statements
    memo = {} if memo is None else memo

    def remember(key: tuple[object, ...], make: Callable[[], Any]) -> Any:
        if key not in memo:
            memo[key] = make()
        return memo[key]
    points = group_boundaries(lowered) if boundaries is None else boundaries
    cuts = sorted({0, *points, len(statements)})
    capacity = machine.scratchpad.partition_bytes

    def alone(index: int) -> Cost:
        def make() -> Cost:
            tiling = op_tiling(lowered, machine, statements[index], frozenset(), capacity)
            if tiling is None:
                return (1 << 62, 1 << 62)
            return _run(lowered, machine, lambda t: price_op(t, statements[index], tiling, frozenset(), capacity))
        return remember(("alone", index), make)

    def fits(group: Group) -> bool:
        def make() -> int | None:  # the working set, or None when the group cannot be tiled so
            try:
                if not group.cache and recompute_ratio(lowered, group) > MAX_RECOMPUTE:
                    return None
                return working_set(lowered, group, partition_bytes)
            except NotCacheable:
                return None
        need = remember(("need", group), make)
        return need is not None and need <= budget

    def staged(group: Group) -> int:
        return remember(("room", group), lambda: staged_room(lowered, machine, group))

    def as_group(first: int, last: int) -> tuple[Cost, Group] | None:
        if not is_closed(lowered, first, last) or any(s.indirect for s in statements[first:last + 1]):
            return None
        ops = tuple(map(sum, zip(*(alone(i) for i in range(first, last + 1)), strict=True)))
        shape = lowered.graph.tensors[sink_tensor(statements[last])].shape
        best: tuple[Cost, Group] | None = None

        def consider(group: Group) -> bool:
            """Price `group` if it fits, keeping the cheapest; whether it fitted."""
            nonlocal best
            if not fits(group):
                return False
            plan = group_schedule(lowered, group)

            def walk(timeline: Timeline, plan: GroupSchedule = plan) -> None:
                price_group(timeline, plan, frozenset())

            cost: Cost = remember(("cost", group), functools.partial(_run, lowered, machine, walk))
            if cost[1] * GROUP_ESTIMATE_MARGIN <= ops[1] * CYCLES_SLACK and (best is None or cost < best[0]) \
                    and staged(group) <= budget:  # first fit may take more than the estimate (staging.room)
                best = (cost, group)
            return True

        channel = [(tile, False) for tile in channel_tiles(shape)]
        for streamed, candidates in ((False, group_tiles(shape)), (True, channel)):
            if streamed and best is not None:
                break  # weights stream only where no tile holds them
            tried = 0
            for tile, cacheable in candidates:
                options = [Group(first, last, tile, True, lines=True), Group(first, last, tile, True)] \
                    if cacheable else []
                options += [Group(first, last, tile, False, streamed=streamed),
                            Group(first, last, tile, False, slots=1, streamed=streamed)]
                fitted = False
                for group in options:
                    if group.slots == 1 and fitted:
                        continue  # the same tiles fit with two in flight
                    if consider(group):
                        tried += 1
                        fitted = fitted or not group.cache
                if tried >= MAX_TILES:
                    break
        if best is None:  # neither the weights nor the input fit whole: the tiles of the run's matmul or conv alone
            for tile in grid_tiles(first, last, shape):
                if not consider(Group(first, last, tile, False, streamed=True)):
                    consider(Group(first, last, tile, False, slots=1, streamed=True))
        return best

    def grid_tiles(first: int, last: int, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Sink tiles cutting channels and rows (and columns) at once, for a streamed group: the output box of the
        last matmul or conv of the run whose output is the sink's shape, tiled as it is alone (its loop order
        keeps a weight block for every row of its channel block, as the group's row-major tiles do), and that box
        with half the rows or half the channels, to leave room for the ops after it."""
        for index in range(last, first - 1, -1):
            stmt = statements[index]
            out = stmt.writes[0].tensor
            if stmt.engine != "tensor" or lowered.graph.tensors[out].shape != shape:
                continue
            tiling = remember(("tiling", index), functools.partial(op_tiling, lowered, machine, stmt, frozenset(),
                                                                   capacity))
            if tiling is None or tiling.split:
                return []
            box = tile_boxes(stmt, middle_block(stmt, dict(tiling.tile)))[1][out]
            found = [box.shape]
            for axis in (len(shape) - 2, 1) if len(shape) == 4 else (len(shape) - 2, len(shape) - 1):
                if 0 < axis < len(shape) and box.shape[axis] > 1:
                    found.append(tuple(-(-size // 2) if i == axis else size for i, size in enumerate(box.shape)))
            return [tile for tile in dict.fromkeys(found) if tile != shape]
        return []

    @functools.cache
    def run(i: int, j: int) -> tuple[Cost, tuple[Group, ...]]:
        first, last = cuts[i], cuts[j] - 1
        ops = tuple(map(sum, zip(*(alone(k) for k in range(first, last + 1)), strict=True)))
        choice: tuple[Cost, tuple[Group, ...]] = ((ops[0], ops[1]), ())
        if last > first:
            grouped = as_group(first, last)
            if grouped is not None and grouped[0] < choice[0]:
                choice = (grouped[0], (grouped[1],))
        return choice

    def earliest(j: int) -> int:
        return min(max(0, j - MAX_SPAN), next((i for i in range(j) if cuts[j] - cuts[i] <= MAX_STATEMENTS), j - 1))

    return cheapest_cover(len(cuts) - 1, run, earliest=earliest)[1]


def cheapest_cover(intervals: int, run: Callable[[int, int], tuple[Cost, tuple[Group, ...]]],
                   max_span: int = MAX_SPAN, earliest: Callable[[int], int] | None = None,
                   ) -> tuple[Cost, tuple[Group, ...]]:
    """The cheapest way to cover intervals 0..intervals-1 by runs of at most `max_span` consecutive intervals, where
    `run(i, j)` prices intervals i..j-1 as one run (and says which groups it makes); costs add element-wise and
    compare bytes first. `earliest(j)`, when given, is the first interval a run ending before j may start at
    (instead of j - max_span).

    >>> cheapest_cover(2, lambda i, j: ((5, 0), ()) if j - i == 2 else ((3, 0), ()))
    ((5, 0), ())
    """
    best: dict[int, tuple[Cost, tuple[Group, ...]]] = {0: ((0, 0), ())}
    for j in range(1, intervals + 1):
        options = []
        for i in range(earliest(j) if earliest else max(0, j - max_span), j):
            (before, groups), (cost, made) = best[i], run(i, j)
            options.append(((before[0] + cost[0], before[1] + cost[1]), groups + made))
        best[j] = min(options, key=lambda option: option[0])
    return best[intervals]


def _run(lowered: LoweredGraph, machine: MachineConfig, walk: Callable[[Timeline], None]) -> Cost:
    timeline = Timeline(lowered, machine)
    walk(timeline)
    return (timeline.dram_bytes, int(timeline.end))

