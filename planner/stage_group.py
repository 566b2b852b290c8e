"""Staging one fusion group: its tiles, each running every op of the group on the chip, one after the other.

Per group, the constants its ops read are loaded once and held for all its tiles. Per tile, the inputs from outside
the group are loaded (the next tile's before this tile's computes, so DMA runs ahead), every step computes into a
buffer of that tile (or in place into a cached intermediate or a resident tensor), the sink's tile is stored, and
every buffer of the tile is released after its last reader. Each buffer is fresh, so the allocator alone decides
where tiles overlap, and the dependencies are the data's: a step waits for the steps and loads it reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from planner.groups import Group, constant_boxes, hull, internal_tensors, output_boxes, sink_tensor, tiles
from planner.stage_op import Resident, mnk_of
from planner.staging import ProgramBuilder
from planner.stmt import LoweredGraph
from planner.tiling import block_size
from simulator.isa import Box

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
        buffer = builder.buffer(f"{tag}.{tensor}", box.shape, graph.elem_bytes(tensor))
        constants[tensor] = (box, buffer, builder.load(tensor, box, buffer, [], first_node))
    cached = {t: Resident(builder.buffer(f"{tag}.{t}", graph.tensors[t].shape, graph.elem_bytes(t)))
              for t in sorted(internal) if group.cache}
    readers: dict[str, list[int]] = {}  # buffer -> instructions that read it

    def load_inputs(index: int) -> dict[str, Placed]:
        boxes: dict[str, Box] = {}
        for step in steps_of[index]:
            for tensor, box in step.reads.items():
                if tensor not in internal and tensor not in constants and tensor not in resident:
                    boxes[tensor] = hull(boxes[tensor], box) if tensor in boxes else box
        node = statements[steps_of[index][0].index].node
        placed = {}
        for tensor, box in boxes.items():
            buffer = builder.buffer(f"{tag}.tile{index}.{tensor}", box.shape, graph.elem_bytes(tensor))
            placed[tensor] = (box, buffer, builder.load(tensor, box, buffer, [], node))
        return placed

    pending = load_inputs(0)
    for index, steps in enumerate(steps_of):
        loaded = pending
        if index + 1 < len(steps_of):  # prefetch: the next tile's loads go ahead of this tile's computes
            pending = load_inputs(index + 1)
        local: dict[str, Placed] = {}
        for tensor, box in output_boxes(steps).items():
            if tensor not in cached and tensor not in resident:
                local[tensor] = (box, builder.buffer(f"{tag}.tile{index}.{tensor}", box.shape,
                                                     graph.elem_bytes(tensor)), [])
        last_step = {tensor: position for position, step in enumerate(steps) for tensor in step.reads}
        for position, step in enumerate(steps):
            stmt = statements[step.index]
            reads: dict[str, tuple[Box, str, tuple[int, ...]]] = {}
            deps: list[int] = []
            for tensor, box in step.reads.items():
                whole = cached.get(tensor) or resident.get(tensor)
                if whole is not None:
                    reads[tensor] = (box, whole.buffer, box.start)
                    deps += whole.writers_of(box)
                    continue
                held, buffer, filled = (local.get(tensor) or constants.get(tensor) or loaded[tensor])
                reads[tensor] = (box, buffer, _offset(box, held))
                deps += filled
            whole_out = cached.get(step.output) or resident.get(step.output)
            if whole_out is not None:
                out_buffer, at = whole_out.buffer, step.box.start
            else:
                held, out_buffer, _ = local[step.output]
                at = _offset(step.box, held)
            share = block_size(stmt, step.block), max(1, block_size(stmt, {}))
            compute = builder.compute(stmt.node, "tensor" if stmt.engine == "tensor" else "vector", reads,
                                      (step.output, step.box, out_buffer, at), deps,
                                      -(-stmt.macs * share[0] // share[1]), -(-stmt.elem_ops * share[0] // share[1]),
                                      mnk_of(stmt, step.block))
            for tensor, (_, buffer, _) in reads.items():
                whole = cached.get(tensor) or resident.get(tensor)
                if whole is not None:
                    whole.readers.append(compute)
                else:
                    readers.setdefault(buffer, []).append(compute)
            if whole_out is not None:
                whole_out.writes.append((step.box, compute))
            else:
                local[step.output][2].append(compute)
            for tensor in step.reads:  # a tile's buffer goes as soon as its last reader is issued
                if last_step[tensor] == position and (tensor in local or tensor in loaded) and tensor != sink:
                    _, buffer, filled = local.get(tensor) or loaded[tensor]
                    builder.release(buffer, readers.get(buffer) or filled)
        # The sink's tile leaves the chip (or stays where it is resident), then the tile's buffers go.
        sink_node = statements[group.last].node
        if sink in local:
            box, buffer, writers = local[sink]
            readers.setdefault(buffer, []).extend(builder.store(buffer, sink, box, writers, sink_node))
        elif sink in builder.output_tensors:
            whole = resident[sink]
            box = output_boxes(steps)[sink]
            writers = whole.writers_of(box)
            whole.readers.extend(builder.store(whole.buffer, sink, box, writers, sink_node, at=box.start))
        for tensor, (_, buffer, filled) in [*loaded.items(), *local.items()]:
            if tensor not in last_step or tensor == sink:  # never read in the tile (a dead output), or stored
                builder.release(buffer, readers.get(buffer) or filled)
    for _, buffer, filled in constants.values():
        builder.release(buffer, readers.get(buffer) or filled)
    for whole in cached.values():
        builder.release(whole.buffer, sorted({*whole.readers, *(w for _, w in whole.writes)}))


def _offset(box: Box, held: Box) -> tuple[int, ...]:
    return tuple(a - b for a, b in zip(box.start, held.start, strict=True))
