"""Staging one statement: its tiles, their double-buffered loads, computes and stores.

Both strategies stage through here. The baseline passes no residency: every input comes from DRAM and every output
goes back. The fused strategy passes the tensors it keeps whole in the scratchpad across ops: a tile reads those in
place (at its box's position in the whole-tensor buffer) and writes them in place, with no DMA at all, and the tile
search only has the room those resident buffers leave.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from planner.errors import PlanError, TileTooLarge
from planner.schedule.ir import OpTiling
from planner.stage_split import split_dim, stage_split_reduction
from planner.staging import ProgramBuilder, boxes_meet
from planner.stmt import Statement
from planner.tiling import (
    Block,
    block_size,
    blocks,
    extents,
    largest_tile,
    loop_orders,
    middle_block,
    output_dims,
    tile_boxes,
)
from simulator.isa import Box

# Ops laid out as convolutions (output channels are N on the systolic array).
CONV_LIKE = frozenset({"Conv", "ConvTranspose", "QLinearConv", "ConvInteger"})

MAX_SHRINKS = 16


@dataclass
class Resident:
    """A tensor kept whole in one buffer: who wrote which part, and who has read it (for its release)."""

    buffer: str
    writes: list[tuple[Box, int]] = field(default_factory=list)
    readers: list[int] = field(default_factory=list)

    def writers_of(self, box: Box) -> list[int]:
        return [index for written, index in self.writes if boxes_meet(written, box)]


def _too_large(builder: ProgramBuilder, stmt: Statement, block: Block | None, need: int, capacity: int,
               in_place: frozenset[str]) -> TileTooLarge:
    scratchpad = builder.machine.scratchpad
    where = "its smallest tile (one output element) needs" if block is not None else \
        "its tiles of one output element need"
    return TileTooLarge(f"{builder.graph.source}: op {stmt.node!r} ({stmt.op_type}): {where} {need:,} bytes per "
                        f"partition with double buffering, more than the {capacity:,} the scratchpad has "
                        f"({scratchpad.capacity_bytes:,} bytes in {scratchpad.partitions} partitions)",
                        node=stmt.node, op_type=stmt.op_type, block=dict(block) if block is not None else None,
                        bytes_per_partition=need, capacity_bytes=capacity, in_place=tuple(sorted(in_place)))


def tile_cost(stmt: Statement, block: Block, partition_bytes: Callable[[str, tuple[int, ...]], int],
              in_place: frozenset[str] = frozenset()) -> int:
    """Bytes per partition the buffers of one tile take: two slots per input and output (double buffering), one for
    an input whose box is the same for every tile (weights tiled only spatially), none for tensors read in place."""
    whole_reads, _ = tile_boxes(stmt, {})
    reads, writes = tile_boxes(stmt, block)
    total = sum((1 if box == whole_reads[t] else 2) * partition_bytes(t, box.shape)
                for t, box in reads.items() if t not in in_place)
    return total + sum(2 * partition_bytes(t, box.shape) for t, box in writes.items() if t not in in_place)


def stage_statement(builder: ProgramBuilder, stmt: Statement, resident: Mapping[str, Resident] | None = None,
                    budget: int | None = None, tiling: OpTiling | None = None) -> None:
    """Emit the tiles of one statement; tensors in `resident` are read and written in place. A `tiling` chosen
    beforehand (planner.schedule) is staged as it is; without one the tile is chosen here."""
    resident = resident or {}
    graph = builder.graph
    whole_reads, _ = tile_boxes(stmt, {})
    capacity = builder.machine.scratchpad.partition_bytes if budget is None else budget
    spans = extents(stmt)

    def cost(block: Block) -> int:
        if stmt.indirect and stmt.indirect.view and any(
                block.get(dim, spans[dim]) != spans[dim] for dim in stmt.indirect.index_dims):
            return capacity + 1  # indices read as a view must stay whole: the DMA reads them in row-major order
        return tile_cost(stmt, block, lambda t, shape: builder.partition_bytes(shape, graph.elem_bytes(t)),
                         frozenset(resident))

    def buffers_for(tile: dict[str, int], order: tuple[str, ...] | None = None,
                    ) -> tuple[list[tuple[Block, dict[str, Box], dict[str, Box]]], dict[str, tuple[int, ...]],
                               set[str], int]:
        """The tiles in order, each tensor's buffer shape (the largest box it holds), the inputs every tile reads
        whole (one slot), and the bytes per partition all that takes."""
        tiles = _cheapest_order(stmt, tile, graph.elem_bytes, set(resident)) if order is None else \
            [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, tile, order)]
        shapes: dict[str, tuple[int, ...]] = {}
        for _, reads, writes in tiles:
            for tensor, box in [*reads.items(), *writes.items()]:
                if tensor not in resident:
                    old = shapes.get(tensor, box.shape)
                    shapes[tensor] = tuple(max(a, b) for a, b in zip(old, box.shape, strict=True))
        constant = {t for t in whole_reads if all(reads.get(t) == whole_reads[t] for _, reads, _ in tiles)}
        need = sum((1 if t in constant else 2) * builder.partition_bytes(shape, graph.elem_bytes(t))
                   for t, shape in shapes.items())
        return tiles, shapes, constant, need

    minimal = {dim: 1 for dim in output_dims(stmt)}
    reduction = split_dim(builder, stmt)
    # Not even one output element with the whole reduction fits: split the reduction, partial sums on chip.
    splittable = reduction is not None and not resident.keys() & {*stmt.tensors_read, stmt.writes[0].tensor}
    target = capacity
    if tiling is not None and tiling.split and reduction is not None:
        stage_split_reduction(builder, stmt, capacity, reduction)
        return
    for _ in range(0 if tiling is not None else MAX_SHRINKS):
        tile = largest_tile(stmt, cost, target)
        if tile is None:
            middle = middle_block(stmt, minimal)
            if cost(middle) > capacity:  # one block alone is too large: no need to look at the others
                if splittable and reduction is not None:
                    stage_split_reduction(builder, stmt, capacity, reduction)
                    return
                raise _too_large(builder, stmt, middle, cost(middle), capacity, frozenset(resident))
            tile = minimal  # the last resort, whose border blocks may still need more
        tiles, shapes, constant, need = buffers_for(tile)
        # The tile was sized on one block; a block at a border can read more (padding shifts its halo), and the
        # buffers must hold the largest of all: if they do not fit, aim lower and tile again.
        if need <= capacity:
            break
        if tile == minimal:
            if splittable and reduction is not None:
                stage_split_reduction(builder, stmt, capacity, reduction)
                return
            raise _too_large(builder, stmt, None, need, capacity, frozenset(resident))
        target -= need - capacity
    else:
        if tiling is None:
            raise PlanError(f"{graph.source}: op {stmt.node!r} ({stmt.op_type}): no tiling fits its buffers in "
                            f"{capacity:,} bytes per partition")
        tiles, shapes, constant, need = buffers_for(dict(tiling.tile), tiling.order)
    buffers = {t: [builder.buffer(f"{stmt.name}.{t}.{s}", shapes[t], graph.elem_bytes(t))
                   for s in range(1 if t in constant else 2)] for t in shapes}

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
        current = pending
        if index + 1 < len(tiles):  # prefetch: the next tile's loads go ahead of this compute
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
            last_reader[out_buffer] = builder.store(out_buffer, out_tensor, out_box, [compute], stmt.node)
    for tensor_buffers in buffers.values():
        for buffer in tensor_buffers:
            if buffer in last_reader:
                builder.release(buffer, last_reader[buffer])


def _cheapest_order(stmt: Statement, tile: dict[str, int], elem_bytes: Callable[[str], int], in_place: set[str],
                    ) -> list[tuple[Block, dict[str, Box], dict[str, Box]]]:
    """The tiles in the loop order that loads the fewest bytes: an input is reloaded only when its box changes, so
    the order decides which operand is read once and which once per tile of the other."""
    best: tuple[int, list[tuple[Block, dict[str, Box], dict[str, Box]]]] | None = None
    for order in loop_orders(stmt, tile):
        tiles = [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, tile, order)]
        loaded = 0
        held: dict[str, Box] = {}
        for _, reads, _ in tiles:
            for tensor, box in reads.items():
                if tensor not in in_place and held.get(tensor) != box:
                    loaded += box.numel * elem_bytes(tensor)
                    held[tensor] = box
        if best is None or loaded < best[0]:
            best = (loaded, tiles)
    assert best is not None
    return best[1]


def mnk_of(stmt: Statement, block: Block) -> tuple[int, ...]:
    """Systolic shape of a tensor-engine tile: K the reduction, N the output channels, M the rest."""
    if stmt.engine != "tensor":
        return ()
    spans = extents(stmt)
    k = math.prod(hi - lo for dim, (lo, hi) in spans.items() if dim not in output_dims(stmt))
    out = {dim: hi - lo for dim, (lo, hi) in block.items()}
    n = math.prod(out.get(dim, 1) for dim in ("g", "k") if dim in out) if stmt.op_type in CONV_LIKE \
        else out.get("n", 1)
    return (math.prod(out.values()) // n, n, k)
