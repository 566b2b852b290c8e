"""The room a fusion group needs: the bytes per partition its buffers take at their peak, as planner.staging.group
and planner.staging.lines stage it. The search keeps a group only if this fits beside what stays resident; the
allocation itself (planner.staging.room) proves it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

from planner.groups import (
    Group,
    Step,
    carried_inputs,
    constant_boxes,
    hull,
    internal_tensors,
    output_boxes,
    sample_tiles,
    tiles,
)
from planner.stmt import LoweredGraph
from simulator.isa import Box


def working_set(lowered: LoweredGraph, group: Group, partition_bytes: Callable[[str, tuple[int, ...]], int]) -> int:
    """Bytes per partition the group needs at its peak: its weights (held for all its tiles), the whole cached
    intermediates, two tiles of each input it loads and of its output, and the intermediates of one tile live at
    the same time (each from its producer to its last reader in the tile). With one slot, one tile's buffers live at
    the same time: its inputs until their last reader, every buffer it computes from its first write to its last
    reader (the sink's until it is stored)."""
    graph = lowered.graph
    partition_bytes = _memoised(partition_bytes)
    internal = internal_tensors(lowered, group)
    constants = constant_boxes(lowered, group)
    held = sum(partition_bytes(t, box.shape) for t, box in constants.items())
    if group.lines:
        from planner.staging.lines import lines_peak  # staging's own order of buffers decides the peak
        return held + lines_peak(lowered, group, partition_bytes)
    if group.cache:
        held += sum(partition_bytes(t, graph.tensors[t].shape) for t in internal)
    peak = 0
    # A streamed group's tiles keep the buffers the next tile reads again (planner.groups.carried_inputs): every
    # tile is looked at, as the cost model walks them all anyway. Other groups' sampled tiles bound the rest.
    sampled = tiles(lowered, group) if group.streamed else sample_tiles(lowered, group)[0]
    carried = carried_inputs(lowered, group) if group.streamed else [frozenset[str]()] * len(sampled)
    for steps, kept in zip(sampled, carried, strict=True):
        if group.slots == 1:
            peak = max(peak, _one_tile_peak(steps, internal, constants, partition_bytes, kept))
            continue
        loads = sum(partition_bytes(t, box.shape) for step in steps for t, box in step.reads.items()
                    if t not in internal and t not in constants)
        shared = sum(partition_bytes(t, box.shape) for t, box in
                     {t: box for step in steps for t, box in step.reads.items() if t in kept}.items())
        sink = steps[-1].output
        out = partition_bytes(sink, output_boxes(steps)[sink].shape)
        live = 0
        if not group.cache:
            last_read = {t: i for i, step in enumerate(steps) for t in step.reads if t in internal}
            sizes = {t: partition_bytes(t, box.shape) for t, box in output_boxes(steps).items() if t in internal}
            first_write: dict[str, int] = {}
            for i, step in enumerate(steps):
                first_write.setdefault(step.output, i)
            for position in range(len(steps)):
                live = max(live, sum(size for t, size in sizes.items()
                                     if first_write[t] <= position <= last_read.get(t, -1)))
        # One tile and the next one's inputs. Independent tiles are interleaved two at a time (planner.staging.group)
        # in what room the allocator finds around them: a tile's intermediates die within it, so two tiles offset
        # by a few steps rarely need twice the peak, and the allocation proves whether they fit.
        peak = max(peak, 2 * loads - shared + 2 * out + live)
    return held + peak


@functools.lru_cache(maxsize=64)  # the search passes one function per graph and machine, and asks it the same shapes
def _memoised(partition_bytes: Callable[[str, tuple[int, ...]], int]) -> Callable[[str, tuple[int, ...]], int]:
    return functools.lru_cache(maxsize=1 << 16)(partition_bytes)


def _one_tile_peak(steps: Sequence[Step], internal: frozenset[str], constants: Mapping[str, Box],
                   partition_bytes: Callable[[str, tuple[int, ...]], int], kept: frozenset[str] = frozenset()) -> int:
    """The most bytes per partition one tile's buffers (as planner.staging.group stages a one-slot tile) hold at
    once, over its steps; the inputs in `kept` stay to the tile's end, for the next tile."""
    loads: dict[str, Box] = {}
    for step in steps:
        for tensor, box in step.reads.items():
            if tensor not in internal and tensor not in constants:
                loads[tensor] = hull(loads[tensor], box) if tensor in loads else box
    spans: list[tuple[int, int, int]] = []  # (first step, last step, bytes)
    last_read = {t: i for i, step in enumerate(steps) for t in step.reads}
    spans += [(0, len(steps) - 1 if t in kept else last_read[t], partition_bytes(t, box.shape))
              for t, box in loads.items()]
    first_write: dict[str, int] = {}
    for i, step in enumerate(steps):
        first_write.setdefault(step.output, i)
    sink = steps[-1].output
    for tensor, box in output_boxes(steps).items():
        end = len(steps) - 1 if tensor == sink or tensor not in last_read else last_read[tensor]
        spans.append((first_write[tensor], end, partition_bytes(tensor, box.shape)))
    return max(sum(size for begin, end, size in spans if begin <= position <= end) for position in range(len(steps)))
