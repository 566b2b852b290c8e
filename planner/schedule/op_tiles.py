"""The tiling of one statement staged alone: the tile the room allows, and the loop order that loads least.

This is the choice per-operator staging makes (the baseline's, in planner.stage_op): the largest tile (by greedy
halving) whose double-buffered buffers fit the room, shrunk while a border tile's buffers do not, in the loop order
that reloads the fewest bytes; a reduction split when not even one output element with the whole reduction fits.
Made here, before staging, so the cost model prices exactly what staging then emits.
"""

from __future__ import annotations

from collections.abc import Callable

from planner.alloc import buffer_bytes
from planner.best_unfused import ACCUMULATOR_BYTES
from planner.schedule.ir import OpTiling
from planner.stage_op import MAX_SHRINKS, tile_cost
from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block, blocks, extents, largest_tile, loop_orders, middle_block, output_dims, tile_boxes
from simulator.isa import Box
from simulator.machine import MachineConfig

Tiles = list[tuple[Block, dict[str, Box], dict[str, Box]]]


def partition_bytes_of(lowered: LoweredGraph, machine: MachineConfig) -> Callable[[str, tuple[int, ...]], int]:
    """Aligned bytes per partition a buffer of `shape` elements of `tensor` takes."""
    graph, sp = lowered.graph, machine.scratchpad
    return lambda tensor, shape: buffer_bytes(shape, graph.elem_bytes(tensor), sp)


def split_dim(lowered: LoweredGraph, stmt: Statement) -> str | None:
    """The reduction dim this op can split (planner.stage_split.split_dim), or None."""
    node = next(n for n in lowered.graph.nodes if n.name == stmt.node)
    if stmt.op_type == "Conv" and int(node.attrs.get("group", 1)) == 1:
        return "c"
    if stmt.op_type in ("MatMul", "Gemm"):
        return "k"
    return None


def op_tiling(lowered: LoweredGraph, machine: MachineConfig, stmt: Statement, resident: frozenset[str],
              budget: int) -> OpTiling | None:
    """How staging tiles `stmt` in `budget` bytes per partition with the tensors in `resident` read and written in
    place; None when nothing fits (staging would refuse it).

    >>> # op_tiling(lowered, machine, lowered.statements[0], frozenset(), machine.scratchpad.partition_bytes)
    """
    size_of = partition_bytes_of(lowered, machine)
    spans = extents(stmt)
    touched = resident & {*stmt.tensors_read, stmt.writes[0].tensor}

    def cost(block: Block) -> int:
        if stmt.indirect and stmt.indirect.view and any(
                block.get(dim, spans[dim]) != spans[dim] for dim in stmt.indirect.index_dims):
            return budget + 1
        return tile_cost(stmt, block, size_of, frozenset(touched))

    minimal = {dim: 1 for dim in output_dims(stmt)}
    reduction = split_dim(lowered, stmt)
    splittable = reduction is not None and not touched
    target = budget
    for _ in range(MAX_SHRINKS):
        tile = largest_tile(stmt, cost, target)
        if tile is None:
            if cost(middle_block(stmt, minimal)) > budget:
                return _split(lowered, machine, stmt, budget) if splittable else None
            tile = minimal
        order, tiles = cheapest_order(lowered, stmt, tile, touched)
        need = buffer_need(lowered, machine, stmt, tiles, touched)
        if need <= budget:
            return OpTiling(tuple(tile.items()), order)
        if tile == minimal:
            return _split(lowered, machine, stmt, budget) if splittable else None
        target -= need - budget
    return None


def cheapest_order(lowered: LoweredGraph, stmt: Statement, tile: dict[str, int], in_place: frozenset[str],
                   ) -> tuple[tuple[str, ...], Tiles]:
    """The loop order that loads the fewest bytes (an input reloaded only when its box changes), and its tiles."""
    best: tuple[int, tuple[str, ...], Tiles] | None = None
    for order in loop_orders(stmt, tile):
        tiles = [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, tile, order)]
        loaded = 0
        held: dict[str, Box] = {}
        for _, reads, _ in tiles:
            for tensor, box in reads.items():
                if tensor not in in_place and held.get(tensor) != box:
                    loaded += box.numel * lowered.graph.elem_bytes(tensor)
                    held[tensor] = box
        if best is None or loaded < best[0]:
            best = (loaded, order, tiles)
    assert best is not None
    return best[1], best[2]


def constant_inputs(stmt: Statement, tiles: Tiles) -> frozenset[str]:
    """Inputs every tile reads whole: one buffer slot, loaded once."""
    whole_reads, _ = tile_boxes(stmt, {})
    return frozenset(t for t in whole_reads if all(reads.get(t) == whole_reads[t] for _, reads, _ in tiles))


def buffer_need(lowered: LoweredGraph, machine: MachineConfig, stmt: Statement, tiles: Tiles,
                in_place: frozenset[str]) -> int:
    """Bytes per partition the tiles' buffers take: the largest box of each tensor, two slots unless constant."""
    size_of = partition_bytes_of(lowered, machine)
    shapes: dict[str, tuple[int, ...]] = {}
    for _, reads, writes in tiles:
        for tensor, box in [*reads.items(), *writes.items()]:
            if tensor not in in_place:
                old = shapes.get(tensor, box.shape)
                shapes[tensor] = tuple(max(a, b) for a, b in zip(old, box.shape, strict=True))
    constant = constant_inputs(stmt, tiles)
    return sum((1 if t in constant else 2) * size_of(t, shape) for t, shape in shapes.items())


def _split(lowered: LoweredGraph, machine: MachineConfig, stmt: Statement, budget: int) -> OpTiling | None:
    return OpTiling((), (), split=True) if split_tiles(lowered, machine, stmt, budget) is not None else None


def split_tiles(lowered: LoweredGraph, machine: MachineConfig, stmt: Statement, capacity: int,
                ) -> list[tuple[Block, dict[str, Box], dict[str, Box], bool]] | None:
    """The slices planner.stage_split emits for `stmt` in `capacity`: (block, reads, writes, last slice of its
    output tile) each; None when not even one output element over one reduction step fits."""
    reduction = split_dim(lowered, stmt)
    assert reduction is not None
    size_of = partition_bytes_of(lowered, machine)
    out_tensor = stmt.writes[0].tensor
    spans = extents(stmt)
    sp = machine.scratchpad

    def need(block: Block) -> int:
        reads, writes = tile_boxes(stmt, block)
        (out_box,) = writes.values()
        return sum(2 * size_of(t, box.shape) for t, box in reads.items()) + \
            buffer_bytes(out_box.shape, ACCUMULATOR_BYTES, sp) + size_of(out_tensor, out_box.shape)

    tile = {dim: spans[dim][1] - spans[dim][0] for dim in (*output_dims(stmt), reduction)}
    tile[reduction] = max(1, tile[reduction] // 2)
    while need(middle_block(stmt, tile)) > capacity:
        candidates = [dim for dim, size in tile.items() if size > 1]
        if not candidates:
            return None
        tile = min(({**tile, dim: -(-tile[dim] // 2)} for dim in candidates),
                   key=lambda t: (need(middle_block(stmt, t)), -sum(t.values())))
    lo, hi = spans[reduction]
    steps = [(start, min(start + tile[reduction], hi)) for start in range(lo, hi, tile[reduction])]
    found = [({**block, reduction: step}, *tile_boxes(stmt, {**block, reduction: step}), step[1] == hi)
             for block in blocks(stmt, {d: tile[d] for d in output_dims(stmt)}) for step in steps]
    shapes: dict[str, tuple[int, ...]] = {}
    for _, reads, writes, _ in found:
        for tensor, box in [*reads.items(), *writes.items()]:
            old = shapes.get(tensor, box.shape)
            shapes[tensor] = tuple(max(a, b) for a, b in zip(old, box.shape, strict=True))
    total = sum(2 * size_of(t, s) for t, s in shapes.items() if t != out_tensor) + \
        buffer_bytes(shapes[out_tensor], ACCUMULATOR_BYTES, sp) + size_of(out_tensor, shapes[out_tensor])
    return found if total <= capacity else None
