"""Staging a line-buffered fusion group: each tile holds only the rows it reads or writes, and hands the rows the next
tile shares over on chip (DeFiNES's fully-cached mode, with the cache cut down to the overlap).

The tiles are a cached group's (planner.groups.tiles): each computes only the rows of each intermediate no tile before
it did. Per tile and per tensor it touches (an intermediate, or an input from outside the group that is not resident),
one buffer holds the tile's window of it (`Line.held`): the rows it takes over from the last tile holding that tensor
(`carry`), then the rows it loads (an input) or computes (an intermediate) itself (`fresh`). After its last reader in
the tile, the window's rows a later tile takes (`handed`) are copied into a buffer of their own, and the window goes;
the next tile copies them into its window. (Copies are Identities on the vector engine; two small copies, so that a
tile's windows need not outlive their readers.) So the group's input is read from DRAM once, its intermediates never
leave the chip, and no row is computed twice. The weights are loaded once, the sink is stored tile by tile.

`line_plan` is the plan staging, the cost model (planner.schedule.cost.price_lines) and the working set
(`lines_peak`) all follow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from planner.groups import (
    Group,
    NotCacheable,
    constant_boxes,
    hull,
    internal_tensors,
    output_boxes,
    remaining,
    sink_tensor,
    tiles,
)
from planner.staging.builder import ProgramBuilder
from planner.staging.op import Resident
from planner.staging.tile import compute_block
from planner.stmt import LoweredGraph
from simulator.isa import Box


@dataclass(frozen=True, slots=True)
class Line:
    """One tile's window of one tensor: the rows it holds, those it loads or computes (None: all carried), those it
    takes over from the last tile holding the tensor (None: none), and those a later tile takes from it (None:
    none)."""

    held: Box
    fresh: Box | None
    carry: Box | None
    handed: Box | None


def _within(inner: Box, outer: Box) -> bool:
    return all(c <= a and b <= d for a, b, c, d in zip(inner.start, inner.stop, outer.start, outer.stop, strict=True))


def _before(held: Box, fresh: Box | None) -> Box | None:
    """The rows of `held` before `fresh`, which must end where `held` does; None when there are none."""
    if fresh is None:
        return held
    differ = [a for a in range(len(held.start)) if (held.start[a], held.stop[a]) != (fresh.start[a], fresh.stop[a])]
    if not differ:
        return None
    axis = differ[0]
    if len(differ) > 1 or fresh.stop[axis] != held.stop[axis] or fresh.start[axis] < held.start[axis]:
        raise NotCacheable
    return Box(held.start, (*held.stop[:axis], fresh.start[axis], *held.stop[axis + 1:]))


def line_plan(lowered: LoweredGraph, group: Group) -> list[dict[str, Line]]:
    """Per tile, per tensor it holds (sorted by name), its Line; raises NotCacheable when a tile's rows are not the
    last holder's carried on and extended along one axis."""
    return _line_plan(lowered, Group(group.first, group.last, group.tile, True, lines=True))


@functools.lru_cache(maxsize=1024)  # the working set, the cost model and staging all ask for the same group's plan
def _line_plan(lowered: LoweredGraph, group: Group) -> list[dict[str, Line]]:
    steps_of = tiles(lowered, group)
    internal = internal_tensors(lowered, group)
    constants = constant_boxes(lowered, group)
    sink = sink_tensor(lowered.statements[group.last])
    found: list[dict[str, list]] = []
    last: dict[str, tuple[int, Box]] = {}  # tensor -> (tile, window) of its last holder
    for index, steps in enumerate(steps_of):
        windows: dict[str, Box] = {}
        written: dict[str, Box] = {}
        for step in steps:
            for tensor, box in step.reads.items():
                if tensor not in constants and tensor != sink:
                    windows[tensor] = hull(windows[tensor], box) if tensor in windows else box
            if step.output != sink:
                out = step.output
                written[out] = hull(written[out], step.box) if out in written else step.box
                windows[out] = hull(windows[out], step.box) if out in windows else step.box
        lines: dict[str, list] = {}
        for tensor in sorted(windows):
            held = windows[tensor]
            before = last.get(tensor)
            fresh = written.get(tensor) if tensor in internal else remaining(held, None if before is None
                                                                              else before[1])
            carry = _before(held, fresh)
            if carry is not None:
                if before is None or not _within(carry, before[1]):
                    raise NotCacheable
                found[before[0]][tensor][3] = carry
            lines[tensor] = [held, fresh, carry, None]
            last[tensor] = (index, held)
        found.append(lines)
    return [{t: Line(*line) for t, line in lines.items()} for lines in found]


def lines_peak(lowered: LoweredGraph, group: Group, partition_bytes: Callable[[str, tuple[int, ...]], int]) -> int:
    """The most bytes per partition the tiles' buffers hold at once, in the order `stage_lines` uses them (the
    weights not counted)."""
    steps_of = tiles(lowered, group)
    sink = sink_tensor(lowered.statements[group.last])
    internal = internal_tensors(lowered, group)
    live: dict[tuple[str, bool], int] = {}  # (tensor, the handed rows alone) -> bytes per partition
    peak = 0

    def add(key: tuple[str, bool], tensor: str, box: Box) -> None:
        nonlocal peak
        live[key] = partition_bytes(tensor, box.shape)
        peak = max(peak, sum(live.values()))

    for steps, lines in zip(steps_of, line_plan(lowered, group), strict=True):
        for tensor, line in lines.items():
            if line.carry is not None:
                add((tensor, False), tensor, line.held)
                live.pop((tensor, True))
        for tensor, line in lines.items():
            if tensor not in internal and line.carry is None:
                add((tensor, False), tensor, line.held)
        last_read = {t: p for p, step in enumerate(steps) for t in step.reads}
        for position, step in enumerate(steps):
            if (step.output, False) not in live:
                add((step.output, False), step.output,
                    output_boxes(steps)[sink] if step.output == sink else lines[step.output].held)
            for tensor in sorted({*step.reads, step.output}):
                handing = lines.get(tensor)
                if handing is not None and last_read.get(tensor, position) == position:
                    if handing.handed is not None:
                        add((tensor, True), tensor, handing.handed)
                    live.pop((tensor, False))
        live.pop((sink, False))
    return peak


def stage_lines(builder: ProgramBuilder, lowered: LoweredGraph, group: Group, resident: Mapping[str, Resident],
                ) -> None:
    """Emit every tile of the line-buffered `group`; tensors in `resident` are read or written in place."""
    graph = lowered.graph
    statements = lowered.statements
    sink = sink_tensor(statements[group.last])
    internal = internal_tensors(lowered, group)
    tag = f"group{group.first}"
    steps_of = tiles(lowered, group)
    first_node, sink_node = statements[group.first].node, statements[group.last].node
    constants: dict[str, tuple[Box, str, list[int]]] = {}
    for tensor, box in constant_boxes(lowered, group).items():
        buffer = builder.buffer(f"{tag}.{tensor}", box.shape, graph.elem_bytes(tensor))
        constants[tensor] = (box, buffer, builder.load(tensor, box, buffer, [], first_node))
    current: dict[str, tuple[Box, str, list[int]]] = {}  # tensor -> (window, buffer, the instructions writing it)
    readers: dict[str, list[int]] = {}

    def release(buffer: str, writers: list[int]) -> None:
        builder.release(buffer, sorted({*readers.get(buffer, []), *writers}))

    for index, (steps, plan) in enumerate(zip(steps_of, line_plan(lowered, group), strict=True)):
        lines = {t: line for t, line in plan.items() if t not in resident}
        node = statements[steps[0].index].node
        for tensor, line in lines.items():  # take over the shared rows, then let the old buffer go
            if line.carry is None:
                continue
            held, old, writers = current.pop(tensor)
            new = builder.buffer(f"{tag}.tile{index}.{tensor}", line.held.shape, graph.elem_bytes(tensor))
            copy = builder.copy(tensor, line.carry, (old, _offset(line.carry, held)),
                                (new, _offset(line.carry, line.held)), writers, node)
            readers.setdefault(old, []).append(copy)
            release(old, writers)
            current[tensor] = (line.held, new, [copy])
        for tensor, line in lines.items():
            if line.carry is None:
                current[tensor] = (line.held, builder.buffer(f"{tag}.tile{index}.{tensor}", line.held.shape,
                                                             graph.elem_bytes(tensor)), [])
            if tensor not in internal and line.fresh is not None:
                held, buffer, writers = current[tensor]
                writers += builder.load(tensor, line.fresh, buffer, [], node, at=_offset(line.fresh, held))
        out_box = output_boxes(steps)[sink]
        sink_buffer = None if sink in resident else builder.buffer(f"{tag}.tile{index}.{sink}", out_box.shape,
                                                                   graph.elem_bytes(sink))
        sink_writers: list[int] = []
        last_read = {t: p for p, step in enumerate(steps) for t in step.reads}
        for position, step in enumerate(steps):
            stmt = statements[step.index]
            reads: dict[str, tuple[Box, str, tuple[int, ...]]] = {}
            deps: list[int] = []
            for tensor, box in step.reads.items():
                if tensor in resident:
                    reads[tensor] = (box, resident[tensor].buffer, box.start)
                    deps += resident[tensor].writers_of(box)
                    continue
                held, buffer, writers = constants.get(tensor) or current[tensor]
                reads[tensor] = (box, buffer, _offset(box, held))
                deps += writers
            if step.output == sink and sink_buffer is None:
                out_buffer, at = resident[sink].buffer, step.box.start
            elif step.output == sink:
                assert sink_buffer is not None
                out_buffer, at = sink_buffer, _offset(step.box, out_box)
            else:
                out_buffer, at = current[step.output][1], _offset(step.box, current[step.output][0])
            compute = compute_block(builder, stmt, step.block, reads, (step.output, step.box, out_buffer, at), deps)
            for tensor, (_, buffer, _) in reads.items():
                if tensor in resident:
                    resident[tensor].readers.append(compute)
                else:
                    readers.setdefault(buffer, []).append(compute)
            if step.output == sink and sink_buffer is None:
                resident[sink].writes.append((step.box, compute))
            elif step.output == sink:
                sink_writers.append(compute)
            else:
                current[step.output][2].append(compute)
            for tensor in sorted({*step.reads, step.output}):  # windows after their last reader: hand on, go
                handing = lines.get(tensor)
                if handing is None or last_read.get(tensor, position) != position:
                    continue
                held, buffer, writers = current.pop(tensor)
                if handing.handed is not None:
                    kept = builder.buffer(f"{tag}.tile{index}.{tensor}.handed", handing.handed.shape,
                                          graph.elem_bytes(tensor))
                    copy = builder.copy(tensor, handing.handed, (buffer, _offset(handing.handed, held)),
                                        (kept, (0,) * len(held.start)), writers, node)
                    readers.setdefault(buffer, []).append(copy)
                    current[tensor] = (handing.handed, kept, [copy])
                release(buffer, writers)
        if sink_buffer is not None:
            readers.setdefault(sink_buffer, []).extend(builder.store(sink_buffer, sink, out_box, sink_writers,
                                                                     sink_node))
            release(sink_buffer, sink_writers)
        elif sink in builder.output_tensors:
            whole = resident[sink]
            whole.readers.extend(builder.store(whole.buffer, sink, out_box, whole.writers_of(out_box), sink_node,
                                               at=out_box.start))
    for _, buffer, writers in [*constants.values(), *current.values()]:
        release(buffer, writers)


def _offset(box: Box, held: Box) -> tuple[int, ...]:
    return tuple(a - b for a, b in zip(box.start, held.start, strict=True))
