"""Staging one statement: its tiles, their double-buffered (or, where that moves less, single-buffered) loads,
computes and stores.

Both strategies stage through here. The baseline passes no residency: every input comes from DRAM and every output
goes back. The fused strategy passes the tensors it keeps whole in the scratchpad across ops: a tile reads those in
place (at its box's position in the whole-tensor buffer) and writes them in place, with no DMA at all, and the tile
search only has the room those resident buffers leave.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from planner.schedule.ir import OpTiling
from planner.staging.builder import ProgramBuilder, boxes_meet
from planner.staging.op_tilings import buffer_shapes, choose_tiling
from planner.staging.split import split_dim, stage_split_reduction
from planner.staging.tile import mnk_of, run_epilogue
from planner.stmt import Statement
from planner.tiling import block_size, blocks, tile_boxes
from simulator.isa import Box

__all__ = ["Resident", "mnk_of", "stage_statement"]


@dataclass
class Resident:
    """A tensor kept whole in one buffer: who wrote which part, and who has read it (for its release)."""

    buffer: str
    writes: list[tuple[Box, int]] = field(default_factory=list)
    readers: list[int] = field(default_factory=list)

    def writers_of(self, box: Box) -> list[int]:
        return [index for written, index in self.writes if boxes_meet(written, box)]


def stage_statement(builder: ProgramBuilder, stmt: Statement, resident: Mapping[str, Resident] | None = None,
                    budget: int | None = None, tiling: OpTiling | None = None,
                    epilogue: Sequence[Statement] = ()) -> None:
    """Emit the tiles of one statement; tensors in `resident` are read and written in place. A `tiling` chosen
    beforehand (planner.schedule) is staged as it is; without one it is chosen here (`choose_tiling`). The
    `epilogue` statements (the tiling's, planner.schedule.epilogue) run in place on each output tile, and the last
    one's output is stored."""
    resident = resident or {}
    graph = builder.graph
    capacity = builder.machine.scratchpad.partition_bytes if budget is None else budget
    in_place = frozenset(resident)
    if tiling is None:
        tiling = choose_tiling(builder, stmt, in_place, capacity)
    if tiling.split:
        reduction = split_dim(builder, stmt)
        assert reduction is not None, f"{stmt.name}: a split tiling of an op with no reduction to split"
        stage_split_reduction(builder, stmt, capacity, reduction, epilogue)
        return
    slots = tiling.slots
    tiles = [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, dict(tiling.tile), tiling.order)]
    shapes, constant, _ = buffer_shapes(builder, stmt, tiles, in_place, slots)
    buffers = {t: [builder.buffer(f"{stmt.name}.{t}.{s}", shapes[t], graph.elem_bytes(t))
                   for s in range(1 if t in constant else slots)] for t in shapes}

    held: dict[str, dict[int, tuple[Box, list[int]]]] = {t: {} for t in buffers}  # slot -> (box, its load ids)
    last_reader: dict[str, list[int]] = {}  # buffer -> the instructions that last read it
    total_points = block_size(stmt, {}) or 1
    done_macs = done_ops = 0

    def load_tile(reads: dict[str, Box], keep: dict[str, tuple[Box, str, tuple[int, ...], list[int]]],
                  ) -> dict[str, tuple[Box, str, tuple[int, ...], list[int]]]:
        """Place a tile's inputs; `keep` (the tile computed next) must not lose a buffer it reads."""
        placed = {}
        for tensor, box in reads.items():
            if tensor in resident:
                whole = resident[tensor]
                placed[tensor] = (box, whole.buffer, box.start, whole.writers_of(box))
                continue
            slot = next((s for s, (b, _) in held[tensor].items() if b == box), None)
            if slot is None:
                used = list(held[tensor])
                slot = next((s for s in range(len(buffers[tensor])) if s not in used), None)
                if slot is None:  # every slot holds data: overwrite the oldest the next compute does not read
                    busy = keep[tensor][1] if tensor in keep else None
                    slot = min((s for s in used if buffers[tensor][s] != busy), key=lambda s: held[tensor][s][1][0])
                buffer = buffers[tensor][slot]
                deps = list(last_reader.get(buffer, []))
                held[tensor][slot] = (box, builder.load(tensor, box, buffer, deps, stmt.node))
            at = (0,) * len(box.start)
            placed[tensor] = (held[tensor][slot][0], buffers[tensor][slot], at, held[tensor][slot][1])
        return placed

    pending = load_tile(tiles[0][1], {})
    for index, (block, _, writes) in enumerate(tiles):
        current = pending if index == 0 or slots == 2 else load_tile(tiles[index][1], {})
        if index + 1 < len(tiles) and slots == 2:  # prefetch: the next tile's loads go ahead of this compute
            pending = load_tile(tiles[index + 1][1], current)
        (out_tensor, out_box), = writes.items()
        deps = [dep for _, _, _, waits in current.values() for dep in waits]
        if out_tensor in resident:
            out_buffer, out_at = resident[out_tensor].buffer, out_box.start
        else:
            out_buffer, out_at = buffers[out_tensor][index % len(buffers[out_tensor])], (0,) * len(out_box.start)
            deps += last_reader.get(out_buffer, [])  # the store of the tile that used this slot before
        points = block_size(stmt, block)
        last = index == len(tiles) - 1
        macs = stmt.macs - done_macs if last else stmt.macs * points // total_points
        elem_ops = stmt.elem_ops - done_ops if last else stmt.elem_ops * points // total_points
        done_macs, done_ops = done_macs + macs, done_ops + elem_ops
        if stmt.indirect is not None:  # a data-dependent Gather: the DMA engine moves the rows the indices name
            (index_box, index_buffer, index_at, _), = current.values()
            compute = builder.gather(stmt.node, stmt.indirect.table, stmt.indirect.axis,
                                     (stmt.indirect.indices, index_box, index_buffer, index_at),
                                     (out_tensor, out_box, out_buffer, out_at), deps, stmt.indirect.view)
        else:
            compute = builder.compute(stmt.node, "tensor" if stmt.engine == "tensor" else "vector",
                                      {t: (box, buffer, at) for t, (box, buffer, at, _) in current.items()},
                                      (out_tensor, out_box, out_buffer, out_at), deps, macs, elem_ops,
                                      mnk_of(stmt, block))
        for tensor, (_, buffer, _, _) in current.items():
            if tensor in resident:
                resident[tensor].readers.append(compute)
            else:
                last_reader[buffer] = [compute]
        if out_tensor in resident:
            resident[out_tensor].writes.append((out_box, compute))
            if out_tensor in builder.output_tensors:  # a model output is also stored, from where it lies
                stores = builder.store(out_buffer, out_tensor, out_box, [compute], stmt.node, at=out_at)
                resident[out_tensor].readers.extend(stores)
        else:
            stored, compute = run_epilogue(builder, epilogue, out_box, out_buffer, (out_tensor, compute))
            last_reader[out_buffer] = builder.store(out_buffer, stored, out_box, [compute], stmt.node)
    for tensor_buffers in buffers.values():
        for buffer in tensor_buffers:
            if buffer in last_reader:
                builder.release(buffer, last_reader[buffer])
