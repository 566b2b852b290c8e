"""The tile one statement is staged with: the largest that fits, then widened where that costs no room.

`planner.tiling.largest_tile` halves the dim that saves the most bytes, and breaks ties by the larger sum of tile
sizes. Where two halvings save the same (an operand kept in one slot when whole takes as much as two slots of its
half), that tie-break halves the wide spatial dims before the channels: a 7x7x512 conv whose input and output are
resident ends in tiles of one output pixel, M = 1 on the systolic array, and every fold pays its weight load, fill
and drain for one streamed row (resnet18's layer4 on the peers machine: 3,136 tiles of 1 x 8 x 4608, 43 M cycles
against the baseline's 0.7 M). So the tile found is widened again: one dim at a time is doubled (or grown to its
extent) while the tile still fits, taking the growth that most lowers the estimated cycles of the whole op. Growing
a tile never reloads more (every operand's box only grows, and there are fewer tiles), which `stage_statement`
checks anyway.

When not even the tile of one output element fits, a tile that keeps one dim whole may still: a BatchNormalization's
four channel parameters take one slot each when every tile reads them whole, and two slots each when tiles cut the
channels.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from planner.schedule.epilogue import epilogue_steps
from planner.stmt import Statement
from planner.tiling import Block, block_size, extents, largest_tile, middle_block, output_dims
from simulator.machine import MachineConfig, mac_dtype
from simulator.systolic import tensor_cycles

if TYPE_CHECKING:
    from planner.staging.builder import ProgramBuilder
    from simulator.isa import Box

# Ops laid out as convolutions (output channels are N on the systolic array).
CONV_LIKE = frozenset({"Conv", "ConvTranspose", "QLinearConv", "ConvInteger"})


def compute_block(builder: ProgramBuilder, stmt: Statement, block: Block,
                  reads: dict[str, tuple[Box, str, tuple[int, ...]]], output: tuple[str, Box, str, tuple[int, ...]],
                  deps: list[int]) -> int:
    """One tile of `stmt` over `block`, on its engine, charged its share of the statement's work."""
    share, whole = block_size(stmt, block), max(1, block_size(stmt, {}))
    return builder.compute(stmt.node, "tensor" if stmt.engine == "tensor" else "vector", reads, output, deps,
                           -(-stmt.macs * share // whole), -(-stmt.elem_ops * share // whole), mnk_of(stmt, block))


def run_epilogue(builder: ProgramBuilder, epilogue: Sequence[Statement], box: Box, buffer: str,
             written: tuple[str, int]) -> tuple[str, int]:
    """Run the `epilogue` statements on the tile `box` that `buffer` holds (from offset 0) of the tensor in `written`
    (and the instruction that wrote it), each reading and writing it in place; the tensor the buffer then holds, and
    the instruction that wrote it."""
    tensor, writer = written
    at = (0,) * len(box.start)
    for stmt, block, output in epilogue_steps(epilogue, box):
        writer = compute_block(builder, stmt, block, {tensor: (box, buffer, at)}, (output, box, buffer, at), [writer])
        tensor = output
    return tensor, writer


def mnk_of(stmt: Statement, block: Block) -> tuple[int, ...]:
    """Systolic shape of a tensor-engine tile: K the reduction (the block's slice of it, where the block has one, as
    a split reduction's slices do), N the output channels, M the rest."""
    if stmt.engine != "tensor":
        return ()
    spans = extents(stmt)
    outputs = output_dims(stmt)
    k = math.prod(block[dim][1] - block[dim][0] if dim in block else hi - lo
                  for dim, (lo, hi) in spans.items() if dim not in outputs)
    out = {dim: hi - lo for dim, (lo, hi) in block.items() if dim in outputs}
    n = math.prod(out.get(dim, 1) for dim in ("g", "k") if dim in out) if stmt.op_type in CONV_LIKE \
        else out.get("n", 1)
    return (math.prod(out.values()) // n, n, k)


def estimated_cycles(stmt: Statement, block: Block, machine: MachineConfig, dtype: str) -> int:
    """The planner's estimate of one tile's compute time: the systolic folds of a tensor-engine tile (the
    simulator's own formula, at the rate of the op's MAC dtype), or the elements of a vector-engine tile over the
    vector rate."""
    share = block_size(stmt, block) / max(1, block_size(stmt, {}))
    if stmt.engine != "tensor":
        return max(1, math.ceil(stmt.elem_ops * share / machine.vector_engine.elements_per_cycle))
    return tensor_cycles(mnk_of(stmt, block), machine.tensor_engine, mac_dtype(stmt.op_type, dtype))


def op_cycles(stmt: Statement, tile: dict[str, int], machine: MachineConfig, dtype: str, operands: int) -> int:
    """Estimated cycles of the whole op in tiles of `tile`: per tile its compute (the middle block's) and a DMA
    descriptor for each operand it moves (a lower bound on what a tile's transfers cost on their queue)."""
    spans = extents(stmt)
    count = math.prod(-(-(spans[dim][1] - spans[dim][0]) // size) for dim, size in tile.items())
    per_tile = estimated_cycles(stmt, middle_block(stmt, tile), machine, dtype)
    return count * (per_tile + operands * machine.dma.descriptor_cycles)


def choose_tile(stmt: Statement, cost: Callable[[Block], int], budget: int, machine: MachineConfig, dtype: str,
                operands: int) -> dict[str, int] | None:
    """The tile to stage `stmt` with under `budget` bytes per partition (`cost` of a block): the largest by bytes,
    widened while it fits and the estimated cycles drop; None when no tile fits.

    `operands` is how many tensors a tile moves by DMA (for the descriptor share of the estimate).
    """
    tile = largest_tile(stmt, cost, budget) or _one_dim_whole(stmt, cost, budget)
    if tile is None:
        return None
    return widen(stmt, tile, cost, budget, lambda t: op_cycles(stmt, t, machine, dtype, operands))


def widen(stmt: Statement, tile: dict[str, int], cost: Callable[[Block], int], budget: int,
          cycles: Callable[[dict[str, int]], int]) -> dict[str, int]:
    """Grow `tile` one dim at a time (doubled, capped at the extent) while its middle block's `cost` stays within
    `budget`, taking each time the growth with the fewest estimated `cycles`, until no growth lowers them."""
    spans = extents(stmt)
    best = cycles(tile)
    while True:
        grown = []
        for dim, size in tile.items():
            extent = spans[dim][1] - spans[dim][0]
            if size < extent:
                bigger = {**tile, dim: min(extent, 2 * size)}
                if cost(middle_block(stmt, bigger)) <= budget:
                    grown.append((cycles(bigger), -sum(bigger.values()), bigger))
        if not grown:
            return tile
        estimate, _, bigger = min(grown, key=lambda item: item[:2])
        if estimate > best:
            return tile
        tile, best = bigger, estimate


def _one_dim_whole(stmt: Statement, cost: Callable[[Block], int], budget: int) -> dict[str, int] | None:
    """The largest tile of one output element widened along a single dim (halved from whole until it fits)."""
    spans = extents(stmt)
    found: list[dict[str, int]] = []
    for dim in output_dims(stmt):
        size = spans[dim][1] - spans[dim][0]
        while size > 1:
            tile = {d: (size if d == dim else 1) for d in output_dims(stmt)}
            if cost(middle_block(stmt, tile)) <= budget:
                found.append(tile)
                break
            size = -(-size // 2)
    return max(found, key=lambda t: math.prod(t.values()), default=None)
