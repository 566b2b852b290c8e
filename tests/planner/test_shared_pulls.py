"""`planner.groups.tiles`, pulled once per sink and shared by the groups that end there, gives the steps each group
pulls alone (the per-group pull, kept here as the reference).

Every closed run of up to eight statements of the small zoo models, at the tiles the search tries, cached and
recomputed: the same steps, or NotCacheable alike; then the runs again in reverse order of their first statement, so
that a shorter group is asked before the longer one that extends its pull.
"""

from __future__ import annotations

import pytest

from models import build
from planner.graph import load_graph
from planner.group_choice import is_closed
from planner.groups import Group, NotCacheable, Step, hull, internal_tensors, remaining, sink_tensor, tile_starts, tiles
from planner.ops import lower
from planner.schedule.boundaries import group_tiles
from planner.stmt import LoweredGraph
from planner.tiling import block_writing, tile_boxes
from simulator.isa import Box


def reference_tiles(lowered: LoweredGraph, group: Group) -> list[list[Step]]:
    computed: dict[int, Box] | None = {} if group.cache else None
    return [reference_pull(lowered, group, start, computed) for start in tile_starts(lowered, group)]


def reference_pull(lowered: LoweredGraph, group: Group, start: tuple[int, ...], computed: dict[int, Box] | None,
                   ) -> list[Step]:
    statements = lowered.statements[group.first:group.last + 1]
    sink = sink_tensor(statements[-1])
    internal = internal_tensors(lowered, group)
    shape = lowered.graph.tensors[sink].shape
    stop = tuple(min(s + t, e) for s, t, e in zip(start, group.tile, shape, strict=True))
    demand: dict[str, Box] = {sink: Box(start, stop)}
    steps: list[Step] = []
    for offset in range(len(statements) - 1, -1, -1):
        stmt = statements[offset]
        out = sink_tensor(stmt)
        want = demand.get(out)
        if want is None:
            continue
        if computed is not None and out != sink:
            done = computed.get(offset)
            want = remaining(want, done)
            if want is None:
                continue
            computed[offset] = want if done is None else hull(done, want)
        block = block_writing(stmt, out, want)
        if block is None:
            continue
        reads, writes = tile_boxes(stmt, block)
        for tensor, box in reads.items():
            if tensor in internal:
                demand[tensor] = hull(demand[tensor], box) if tensor in demand else box
        steps.append(Step(group.first + offset, block, reads, out, writes[out]))
    return steps[::-1]


def outcome(make, lowered, group):  # type: ignore[no-untyped-def]
    try:
        return [[(s.index, s.block, s.reads, s.output, s.box) for s in steps] for steps in make(lowered, group)]
    except NotCacheable:
        return "not cacheable"


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "cnn", "bert_base"])
@pytest.mark.parametrize("longest_first", [True, False])
def test_shared_pulls_are_the_per_group_pulls(name: str, longest_first: bool) -> None:
    lowered = lower(load_graph(build(name, small=True)))
    count = len(lowered.statements)
    runs = [(first, last) for last in range(count) for first in range(max(0, last - 7), last)
            if is_closed(lowered, first, last)]
    runs.sort(key=lambda run: (run[1], run[0] if longest_first else -run[0]))
    checked = 0
    for first, last in runs:
        shape = lowered.graph.tensors[sink_tensor(lowered.statements[last])].shape
        for tile, cacheable in group_tiles(shape)[:4]:
            for cache in (True, False) if cacheable else (False,):
                group = Group(first, last, tile, cache)
                assert outcome(tiles, lowered, group) == outcome(reference_tiles, lowered, group)
                checked += 1
    assert checked > 20
