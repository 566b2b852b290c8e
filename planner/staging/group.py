"""Staging one fusion group: its tiles, each running every op of the group on the chip, one after the other.

Per group, the constants its ops read are loaded once and held for all its tiles (a streamed group's: what every
tile reads alike, planner.groups.constant_boxes). Per tile, the inputs from outside the group are loaded (the next
tile's before this tile's computes, so DMA runs ahead), every step computes into a buffer of that tile (or in place
into a cached intermediate or a resident tensor), the sink's tile is stored, and every buffer of the tile is
released after its last reader. Each buffer is fresh, so the allocator alone decides where tiles overlap, and the
dependencies are the data's: a step waits for the steps and loads it reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from planner.groups import (
    IN_FLIGHT,
    Group,
    carried_inputs,
    constant_boxes,
    hull,
    internal_tensors,
    output_boxes,
    sink_tensor,
    tiles,
)
from planner.staging.builder import ProgramBuilder
from planner.staging.op import Resident
from planner.staging.tile import compute_block, estimated_cycles
from planner.stmt import LoweredGraph
from simulator.isa import Box
from simulator.machine import MachineConfig

Placed = tuple[Box, str, list[int]]  # (box the buffer holds, buffer, the instructions that filled it)


def stage_group(builder: ProgramBuilder, lowered: LoweredGraph, group: Group, resident: Mapping[str, Resident],
                ) -> None:
    """Emit every tile of `group`; tensors in `resident` (its inputs, or its sink) are read or written in place."""
    graph = lowered.graph
    statements = lowered.statements
    internal = internal_tensors(lowered, group)
    sink = sink_tensor(statements[group.last])
    tag = f"group{group.first}"
    steps_of = tiles(lowered, group)
    first_node = statements[group.first].node

    constants: dict[str, Placed] = {}
    for tensor, box in constant_boxes(lowered, group).items():
        if tensor in resident:
            continue
        buffer = builder.buffer(f"{tag}.{tensor}", box.shape, graph.elem_bytes(tensor))
        constants[tensor] = (box, buffer, builder.load(tensor, box, buffer, [], first_node))
    cached = {t: Resident(builder.buffer(f"{tag}.{t}", graph.tensors[t].shape, graph.elem_bytes(t)))
              for t in sorted(internal) if group.cache}
    readers: dict[str, list[int]] = {}  # buffer -> instructions that read it
    carried = carried_inputs(lowered, group)  # per tile, the inputs whose buffer the next tile reads again

    def kept(index: int, tensor: str) -> bool:  # a buffer this tile shares with the tile before or after it
        return tensor in carried[index] or (index > 0 and tensor in carried[index - 1])

    def load_inputs(index: int) -> dict[str, Placed]:
        boxes: dict[str, Box] = {}
        for step in steps_of[index]:
            for tensor, box in step.reads.items():
                if tensor not in internal and tensor not in constants and tensor not in resident:
                    boxes[tensor] = hull(boxes[tensor], box) if tensor in boxes else box
        node = statements[steps_of[index][0].index].node
        placed = {}
        for tensor, box in boxes.items():
            if index > 0 and tensor in carried[index - 1]:
                placed[tensor] = loaded[index - 1][tensor]  # the box the last tile loaded, kept for this one
                continue
            buffer = builder.buffer(f"{tag}.tile{index}.{tensor}", box.shape, graph.elem_bytes(tensor))
            placed[tensor] = (box, buffer, builder.load(tensor, box, buffer, [], node))
        return placed

    sink_node = statements[group.last].node
    loaded: dict[int, dict[str, Placed]] = {}
    local: dict[int, dict[str, Placed]] = {}
    last_step: dict[int, dict[str, int]] = {}
    finished: set[int] = set()
    open_from = 0  # every tile before this one has emitted its last step
    shared: list[tuple[int, str, list[int]]] = []  # (last tile reading it, buffer, its load) of kept buffers
    for index, position in emission_order(lowered, group, builder.machine):
        steps = steps_of[index]
        # this tile's loads, and (with two slots) the next tile's ahead of this tile's computes
        for ahead in (index, index + 1)[:group.slots]:
            if ahead < len(steps_of) and ahead not in loaded:
                loaded[ahead] = load_inputs(ahead)
        if position == 0:
            local[index] = {
                tensor: (box, builder.buffer(f"{tag}.tile{index}.{tensor}", box.shape, graph.elem_bytes(tensor)), [])
                for tensor, box in output_boxes(steps).items() if tensor not in cached and tensor not in resident}
            last_step[index] = {tensor: p for p, step in enumerate(steps) for tensor in step.reads}
        tile_loaded, tile_local = loaded[index], local[index]
        step = steps[position]
        stmt = statements[step.index]
        reads: dict[str, tuple[Box, str, tuple[int, ...]]] = {}
        deps: list[int] = []
        for tensor, box in step.reads.items():
            whole = cached.get(tensor) or resident.get(tensor)
            if whole is not None:
                reads[tensor] = (box, whole.buffer, box.start)
                deps += whole.writers_of(box)
                continue
            held, buffer, filled = (tile_local.get(tensor) or constants.get(tensor) or tile_loaded[tensor])
            reads[tensor] = (box, buffer, _offset(box, held))
            deps += filled
        whole_out = cached.get(step.output) or resident.get(step.output)
        if whole_out is not None:
            out_buffer, at = whole_out.buffer, step.box.start
        else:
            held, out_buffer, _ = tile_local[step.output]
            at = _offset(step.box, held)
        compute = compute_block(builder, stmt, step.block, reads, (step.output, step.box, out_buffer, at), deps)
        for tensor, (_, buffer, _) in reads.items():
            whole = cached.get(tensor) or resident.get(tensor)
            if whole is not None:
                whole.readers.append(compute)
            else:
                readers.setdefault(buffer, []).append(compute)
        if whole_out is not None:
            whole_out.writes.append((step.box, compute))
        else:
            tile_local[step.output][2].append(compute)
        for tensor in step.reads:  # a tile's buffer goes as soon as its last reader is issued
            if last_step[index][tensor] == position and tensor != sink and (
                    tensor in tile_local or (tensor in tile_loaded and not kept(index, tensor))):
                _, buffer, filled = tile_local.get(tensor) or tile_loaded[tensor]
                builder.release(buffer, readers.get(buffer) or filled)
        if position < len(steps) - 1:
            continue
        # The tile's last step: its sink leaves the chip (or stays where it is resident), and its buffers go.
        if sink in tile_local:
            box, buffer, writers = tile_local[sink]
            readers.setdefault(buffer, []).extend(builder.store(buffer, sink, box, writers, sink_node))
        elif sink in builder.output_tensors:
            whole = resident[sink]
            box = output_boxes(steps)[sink]
            whole.readers.extend(builder.store(whole.buffer, sink, box, whole.writers_of(box), sink_node,
                                               at=box.start))
        for tensor, (_, buffer, filled) in [*tile_loaded.items(), *tile_local.items()]:
            if tensor not in last_step[index] or tensor == sink:  # never read in the tile (a dead output), or stored
                builder.release(buffer, readers.get(buffer) or filled)
        # A buffer kept across tiles goes once every tile that reads it has emitted its last step (two tiles in
        # flight may finish out of order).
        shared += [(index, buffer, filled) for tensor, (_, buffer, filled) in tile_loaded.items()
                   if kept(index, tensor) and tensor not in carried[index]]
        finished.add(index)
        while open_from in finished:
            open_from += 1
        for entry in [e for e in shared if e[0] < open_from]:
            shared.remove(entry)
            builder.release(entry[1], readers.get(entry[1]) or entry[2])
    for _, buffer, filled in constants.values():
        builder.release(buffer, readers.get(buffer) or filled)
    for whole in cached.values():
        builder.release(whole.buffer, sorted({*whole.readers, *(w for _, w in whole.writes)}))


def emission_order(lowered: LoweredGraph, group: Group, machine: MachineConfig) -> list[tuple[int, int]]:
    """(tile, step) pairs in the order to emit them. Each engine runs its computes in program order, and a tile's
    steps alternate between engines (conv, then its BN and ReLU, then the next conv), so one tile at a time leaves
    each engine waiting for the other. Independent tiles (a group that recomputes) are interleaved two at a time
    instead, by a list schedule on estimated compute times: the next step emitted is the one that could start
    first. A cached group's tiles read what earlier tiles computed, and a one-slot group's tiles share their room, so
    they go one after another."""
    steps_of = tiles(lowered, group)
    if group.cache or group.slots == 1 or len(steps_of) == 1:
        return [(index, position) for index, steps in enumerate(steps_of) for position in range(len(steps))]
    statements = lowered.statements
    dtype = lowered.graph.planning_dtype or "fp32"
    free = {"tensor": 0, "vector": 0}
    finish: dict[tuple[int, int], int] = {}
    order: list[tuple[int, int]] = []
    active: dict[int, int] = {}  # tile -> its next step
    upcoming = 0
    while active or upcoming < len(steps_of):
        while len(active) < IN_FLIGHT and upcoming < len(steps_of):
            active[upcoming] = 0
            upcoming += 1
        best: tuple[int, int, int, str] | None = None
        for index, position in active.items():
            step = steps_of[index][position]
            engine = "tensor" if statements[step.index].engine == "tensor" else "vector"
            ready = max((finish[(index, p)] for p in range(position)
                         if steps_of[index][p].output in step.reads), default=0)
            start = max(ready, free[engine])
            if best is None or (start, index) < best[:2]:
                best = (start, index, position, engine)
        assert best is not None
        start, index, position, engine = best
        step = steps_of[index][position]
        free[engine] = finish[(index, position)] = start + estimated_cycles(statements[step.index], step.block,
                                                                            machine, dtype)
        order.append((index, position))
        active[index] = position + 1
        if active[index] == len(steps_of[index]):
            del active[index]
    return order


def _offset(box: Box, held: Box) -> tuple[int, ...]:
    return tuple(a - b for a, b in zip(box.start, held.start, strict=True))
