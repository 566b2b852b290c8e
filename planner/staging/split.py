"""Staging one tensor-engine op whose smallest whole-reduction tile does not fit: the reduction is split.

Conv (one group) splits its input channels, MatMul and Gemm their k. For each output tile, the slices of the reduction
run in turn: each loads its slice of the inputs (double-buffered, so the next slice loads while this one computes),
computes a partial sum on that slice alone and adds the running sum, which stays on chip at accumulator precision
(`ACCUMULATOR_BYTES` per element). The last slice writes the finished tile in the output's own precision, which is
stored once. Weights are streamed: a block of them is loaded per (output tile, slice).

The slice shape is the one that moves the fewest DRAM bytes among those planner.tiling_prices.op_choices prices (ties
by estimated cycles), whose buffers really fit; halving (`split_tile`) is the fallback. A guard against a slice
estimated slower than the halving's was tried and dropped: on vgg16 at edge-npu it moved more and ran slower.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from planner.errors import SplitTooLarge
from planner.staging.builder import ProgramBuilder, ReductionSlice
from planner.staging.counting import largest_shapes
from planner.staging.tile import run_epilogue, widen
from planner.stmt import Statement
from planner.tiling import Block, block_size, blocks, extents, output_dims, tile_boxes
from planner.tiling_prices import ACCUMULATOR_BYTES, op_choices
from simulator.isa import Box
from simulator.machine import mac_dtype
from simulator.systolic import tensor_cycles

SEARCHED_TRIES = 4  # byte figures of searched slicings tried before the halving (a border slice may need more room)


def split_dim(builder: ProgramBuilder, stmt: Statement) -> str | None:
    """The reduction dim this op can split, or None (other ops, grouped convs)."""
    node = builder.nodes[stmt.node]
    if stmt.op_type == "Conv" and int(node.attrs.get("group", 1)) == 1:
        return "c"
    if stmt.op_type in ("MatMul", "Gemm"):
        return "k"
    return None


def _slices(builder: ProgramBuilder, stmt: Statement, start: int, stop: int) -> tuple[tuple[int, int, int, int], ...]:
    """(input slot, axis, start, stop) of each input the reduction runs along, in the shapes the op sees."""
    node = builder.nodes[stmt.node]
    graph = builder.graph
    if stmt.op_type == "Conv":
        return ((0, 1, start, stop), (1, 1, start, stop))
    if stmt.op_type == "Gemm":
        return ((0, 0 if node.attrs.get("transA", 0) else 1, start, stop),
                (1, 1 if node.attrs.get("transB", 0) else 0, start, stop))
    b_rank = len(graph.tensors[node.inputs[1]].shape)
    return ((0, len(graph.tensors[node.inputs[0]].shape) - 1, start, stop), (1, 0 if b_rank == 1 else b_rank - 2,
                                                                               start, stop))


def split_tile(builder: ProgramBuilder, stmt: Statement, capacity: int, reduction: str,
               target: int | None = None) -> dict[str, int]:
    """The slice shape: output dims and the reduction step, the largest by halving whose middle slice fits in
    `target` (the capacity unless given), then widened where the estimated cycles drop; SplitTooLarge when not even
    one output element over one reduction step fits."""
    graph = builder.graph
    out_tensor = stmt.writes[0].tensor
    spans = extents(stmt)
    dims = (*output_dims(stmt), reduction)

    def need(block: Block) -> int:
        reads, writes = tile_boxes(stmt, block)
        total = sum(2 * builder.partition_bytes(box.shape, graph.elem_bytes(t)) for t, box in reads.items())
        (out_box,) = writes.values()
        return total + builder.partition_bytes(out_box.shape, ACCUMULATOR_BYTES) + \
            builder.partition_bytes(out_box.shape, graph.elem_bytes(out_tensor))

    def middle(tile: dict[str, int]) -> Block:
        found = {}
        for dim, size in tile.items():
            lo, hi = spans[dim]
            start = lo + max(0, (hi - lo - size) // 2)
            found[dim] = (start, min(start + size, hi))
        return found

    tile = {dim: spans[dim][1] - spans[dim][0] for dim in dims}
    tile[reduction] = max(1, tile[reduction] // 2)  # a split at all: the whole reduction did not fit
    aim = capacity if target is None else target
    while need(middle(tile)) > aim:
        candidates = [dim for dim, size in tile.items() if size > 1]
        if not candidates:
            step = middle(tile)
            if need(step) <= capacity:
                return tile  # below a lowered aim: the smallest slice, whose border copies decide
            raise SplitTooLarge(f"{graph.source}: op {stmt.node!r} ({stmt.op_type}): one output element over one "
                                f"reduction step needs {need(step):,} bytes per partition, but the scratchpad "
                                f"has {capacity:,}", node=stmt.node, op_type=stmt.op_type, block=step,
                                bytes_per_partition=need(step), capacity_bytes=capacity)
        tile = min(({**tile, dim: -(-tile[dim] // 2)} for dim in candidates),
                   key=lambda t: (need(middle(t)), -sum(t.values())))
    # The halving stops at the first tile that fits, often far below what fits (every buffer takes at least one
    # aligned line per partition): widen it again where the estimated cycles drop (vgg16-small's 3x3 convs at 8 KiB
    # went from 32,768 slices of one output element each to a few hundred).
    return widen(stmt, tile, need, aim, lambda t: _split_cycles(builder, stmt, t, reduction))


def stage_split_reduction(builder: ProgramBuilder, stmt: Statement, capacity: int, reduction: str,
                          epilogue: Sequence[Statement] = ()) -> None:
    """Emit the op's output tiles, each as a sequence of reduction slices (and the `epilogue` statements in place on
    the finished tile); PlanError when not even one output element over one reduction step fits."""
    graph = builder.graph
    out_tensor = stmt.writes[0].tensor
    lo, hi = extents(stmt)[reduction]
    tiles, shapes = _fitting_slices(builder, stmt, capacity, reduction)
    slots = {t: [builder.buffer(f"{stmt.name}.{t}.{s}", shape, graph.elem_bytes(t)) for s in range(2)]
             for t, shape in shapes.items() if t != out_tensor}
    running = builder.buffer(f"{stmt.name}.partial", shapes[out_tensor], ACCUMULATOR_BYTES)
    finished = builder.buffer(f"{stmt.name}.{out_tensor}", shapes[out_tensor], graph.elem_bytes(out_tensor))
    node = builder.nodes[stmt.node]
    bias_slot = 2 if len(node.inputs) > 2 and node.inputs[2] else None
    last_reader: dict[str, list[int]] = {}
    total_points = block_size(stmt, {}) or 1
    done_macs = 0
    for index, (block, (start, stop), reads, writes) in enumerate(tiles):
        placed, deps = {}, []
        for tensor, box in reads.items():
            buffer = slots[tensor][index % 2]
            loads = builder.load(tensor, box, buffer, list(last_reader.get(buffer, [])), stmt.node)
            placed[tensor] = (box, buffer, (0,) * len(box.start))
            deps += loads
        (_, out_box), = writes.items()
        first, last = start == lo, stop == hi
        target = finished if last else running
        deps += last_reader.get(target, []) + last_reader.get(running, [])
        points = block_size(stmt, {**block, reduction: (start, stop)})
        macs = stmt.macs - done_macs if index == len(tiles) - 1 else stmt.macs * points // total_points
        done_macs += macs
        out = {dim: hi_ - lo_ for dim, (lo_, hi_) in block.items()}
        n = math.prod(out.get(d, 1) for d in ("g", "k")) if stmt.op_type == "Conv" else out.get("n", 1)
        k = points // max(1, math.prod(out.values()))
        split = ReductionSlice(_slices(builder, stmt, start, stop), () if first or bias_slot is None else (bias_slot,),
                               None if first else running, partial=not last)
        compute = builder.compute(stmt.node, "tensor", placed, (out_tensor, out_box, target, (0,) * len(out_box.start)),
                                  deps, macs, 0, (math.prod(out.values()) // max(n, 1), n, k), split)
        for _, buffer, _ in placed.values():
            last_reader[buffer] = [compute]
        last_reader[running] = [compute]
        if last:
            stored, ended = run_epilogue(builder, epilogue, out_box, finished, (out_tensor, compute))
            last_reader[finished] = builder.store(finished, stored, out_box, [ended], stmt.node)
    for buffer in [*(b for pair in slots.values() for b in pair), running, finished]:
        if buffer in last_reader:
            builder.release(buffer, last_reader[buffer])


def _slice_boxes(builder: ProgramBuilder, stmt: Statement, block: Block, reduction: str,
                 steps: list[tuple[int, int]]) -> list[tuple[dict[str, Box], dict[str, Box]]]:
    """The boxes of every reduction slice of one output block. A slice moves only the reduction axis of the inputs
    it runs along, so isl is asked for the first two slices and the rest are those boxes moved along that axis
    (isl for every slice is what made vgg16-small at 8 KiB plan for minutes); where the first two slices do not
    show that shape (a view, a strided reduction), isl answers for each."""
    asked = [tile_boxes(stmt, {**block, reduction: step}) for step in steps[:2]]
    node = builder.nodes[stmt.node]
    axis_of: dict[str, tuple[int, int]] = {}  # tensor -> (axis, offset of the slice's start on it)
    for slot, axis, start, _ in _slices(builder, stmt, *steps[0]):
        name = node.inputs[slot]
        if builder.lowered.base(name) != name:
            return [tile_boxes(stmt, {**block, reduction: step}) for step in steps]
        box = asked[0][0].get(name)
        if box is None:
            return [tile_boxes(stmt, {**block, reduction: step}) for step in steps]
        axis_of[name] = (axis, box.start[axis] - start)

    def moved(step: tuple[int, int]) -> tuple[dict[str, Box], dict[str, Box]]:
        reads, writes = asked[0]
        found = {}
        for tensor, box in reads.items():
            if tensor in axis_of:
                axis, offset = axis_of[tensor]
                box = Box((*box.start[:axis], step[0] + offset, *box.start[axis + 1:]),
                          (*box.stop[:axis], step[1] + offset, *box.stop[axis + 1:]))
            found[tensor] = box
        return found, writes

    if any(moved(step) != boxes for step, boxes in zip(steps, asked, strict=False)):
        return [tile_boxes(stmt, {**block, reduction: step}) for step in steps]
    return [*asked[:1], *(moved(step) for step in steps[1:])]


def _split_cycles(builder: ProgramBuilder, stmt: Statement, tile: dict[str, int], reduction: str) -> int:
    """Estimated cycles of the op in split tiles of `tile` (output dims and the reduction slice): per slice its
    systolic folds and a descriptor for each of its three transfers."""
    spans = extents(stmt)
    count = math.prod(-(-(spans[dim][1] - spans[dim][0]) // size) for dim, size in tile.items())
    out = {dim: size for dim, size in tile.items() if dim in output_dims(stmt)}
    n = math.prod(out.get(d, 1) for d in ("g", "k")) if stmt.op_type == "Conv" else out.get("n", 1)
    k = math.prod(hi - lo for dim, (lo, hi) in spans.items() if dim not in output_dims(stmt) and dim != reduction)
    mnk = (math.prod(out.values()) // max(n, 1), n, k * tile[reduction])
    machine = builder.machine
    dtype = mac_dtype(stmt.op_type, builder.graph.planning_dtype or "fp32")
    return count * (tensor_cycles(mnk, machine.tensor_engine, dtype) + 3 * machine.dma.descriptor_cycles)


def split_slices(builder: ProgramBuilder, stmt: Statement, capacity: int, reduction: str,
                 ) -> list[tuple[Block, tuple[int, int], dict[str, Box], dict[str, Box]]]:
    """The slices `stage_split_reduction` emits, in order: (output block, reduction step, reads, writes) each; the
    cost model prices these. Raises SplitTooLarge or PlanError as staging would."""
    return _fitting_slices(builder, stmt, capacity, reduction)[0]


Slices = list[tuple[Block, tuple[int, int], dict[str, Box], dict[str, Box]]]


def _fitting_slices(builder: ProgramBuilder, stmt: Statement, capacity: int, reduction: str,
                    ) -> tuple[Slices, dict[str, tuple[int, ...]]]:
    """The slices and their buffer shapes. The slice is sized on a middle block; one at a border can read more
    (padding shifts its halo), and the buffers hold the largest of all: while they do not fit, aim lower.

    First the slicings planner.best_unfused prices are tried, fewest DRAM bytes first (ties by estimated cycles): the
    halving below takes the largest slice by bytes, which can read an operand many times over."""
    choices = op_choices(builder.lowered, stmt, builder.machine, capacity, split=reduction)
    for attempt, (_, group) in enumerate(itertools.groupby(choices, key=lambda choice: choice[0])):
        if attempt >= SEARCHED_TRIES:
            break
        for _, sizes in sorted((_split_cycles(builder, stmt, dict(sizes), reduction), sizes) for _, sizes, _ in group):
            tiles, shapes, need = _split_tiles(builder, stmt, reduction, dict(sizes))
            if need <= capacity:
                return tiles, shapes
    target = capacity
    for _ in range(16):
        tile = split_tile(builder, stmt, capacity, reduction, target)
        tiles, shapes, need = _split_tiles(builder, stmt, reduction, tile)
        if need <= capacity:
            return tiles, shapes
        if all(size == 1 for size in tile.values()):
            break
        target -= need - capacity
    raise SplitTooLarge(f"{builder.graph.source}: op {stmt.node!r} ({stmt.op_type}): the largest of its split "
                        f"reduction's slices needs {need:,} bytes per partition, but the scratchpad has "
                        f"{capacity:,}", node=stmt.node, op_type=stmt.op_type,
                        block={dim: (0, size) for dim, size in tile.items()}, bytes_per_partition=need,
                        capacity_bytes=capacity)


def _split_tiles(builder: ProgramBuilder, stmt: Statement, reduction: str, tile: dict[str, int],
                 ) -> tuple[Slices, dict[str, tuple[int, ...]], int]:
    graph = builder.graph
    out_tensor = stmt.writes[0].tensor
    spans = extents(stmt)
    outer = list(blocks(stmt, {d: tile[d] for d in output_dims(stmt)}))
    lo, hi = spans[reduction]
    steps = [(start, min(start + tile[reduction], hi)) for start in range(lo, hi, tile[reduction])]
    tiles = [(block, step, *boxes) for block in outer
             for step, boxes in zip(steps, _slice_boxes(builder, stmt, block, reduction, steps), strict=True)]
    shapes = largest_shapes((reads, writes) for _, _, reads, writes in tiles)
    need = sum(2 * builder.partition_bytes(s, graph.elem_bytes(t)) for t, s in shapes.items() if t != out_tensor) + \
        builder.partition_bytes(shapes[out_tensor], ACCUMULATOR_BYTES) + \
        builder.partition_bytes(shapes[out_tensor], graph.elem_bytes(out_tensor))
    return tiles, shapes, need
