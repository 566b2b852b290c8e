"""Tiles of one statement: which dims a tile may split, the boxes a tile touches, and the largest tile that fits.

A tile is a block of the statement's output dims; reduction dims (conv input channels and kernel taps, the k of a
matmul, the window of a pool) always stay whole, so every tile writes final values. What a tile reads comes from isl
footprints (halos included), taken as bounding boxes because a DMA moves boxes.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator, Mapping

import islpy as isl

from planner import poly
from planner.poly.writer_blocks import translated_writers
from planner.stmt import Statement
from simulator.isa import Box

Block = dict[str, tuple[int, int]]


@functools.cache
def output_dims(stmt: Statement) -> tuple[str, ...]:
    """Dims that pick which output element a point writes; the others are reductions.

    A dim is a reduction dim when two points that differ in it can write the same element.
    """
    same_element = functools.reduce(
        isl.Map.union, [w.relation.apply_range(w.relation.reverse()) for w in stmt.writes])
    primed = [f"{dim}_" for dim in stmt.dims]
    found = []
    for dim, other in zip(stmt.dims, primed, strict=True):
        differs = isl.Map(f"{{ {stmt.name}[{', '.join(stmt.dims)}] -> {stmt.name}[{', '.join(primed)}] : "
                          f"{other} != {dim} }}")
        if same_element.intersect(differs).is_empty():
            found.append(dim)
    return tuple(found)


@functools.cache
def extents(stmt: Statement) -> dict[str, tuple[int, int]]:
    """Half-open range of every dim over the statement's domain."""
    return {dim: (stmt.domain.dim_min_val(axis).to_python(), stmt.domain.dim_max_val(axis).to_python() + 1)
            for axis, dim in enumerate(stmt.dims)}


@functools.cache
def _is_box(stmt: Statement) -> bool:
    return bool(stmt.domain.is_box())


def block_size(stmt: Statement, block: Mapping[str, tuple[int, int]]) -> int:
    """Domain points in a block: a product of extents for box domains (all of today's ops), isl's count otherwise."""
    if not _is_box(stmt):
        return poly.count(poly.block_points(stmt, block))
    size = 1
    for dim, lo, hi in _spans(stmt):
        if dim in block:
            start, stop = block[dim]
            size *= max(0, min(hi, stop) - max(lo, start))
        else:
            size *= hi - lo
    return size


@functools.cache
def _spans(stmt: Statement) -> tuple[tuple[str, int, int], ...]:
    return tuple((dim, lo, hi) for dim, (lo, hi) in extents(stmt).items())


def bounding_box(elements: isl.Set) -> Box:
    ndim = elements.dim(isl.dim_type.set)
    return Box(tuple(elements.dim_min_val(axis).to_python() for axis in range(ndim)),
               tuple(elements.dim_max_val(axis).to_python() + 1 for axis in range(ndim)))


def tile_boxes(stmt: Statement, block: Mapping[str, tuple[int, int]]) -> tuple[dict[str, Box], dict[str, Box]]:
    """Bounding boxes of what a block reads and writes, per tensor; tensors it does not touch are left out."""
    reads, writes = _tile_boxes(stmt, tuple(sorted((dim, lo, hi) for dim, (lo, hi) in block.items())))
    return dict(reads), dict(writes)


@functools.lru_cache(maxsize=1 << 17)
def _tile_boxes(stmt: Statement, key: tuple[tuple[str, int, int], ...],
                ) -> tuple[tuple[tuple[str, Box], ...], tuple[tuple[str, Box], ...]]:
    # Cached: the tile search, the loop-order choice and every residency policy ask about the same blocks.
    block = {dim: (lo, hi) for dim, lo, hi in key}
    fast = poly.affine_tile_boxes(stmt, block)  # arithmetic where every access is one affine function, else isl
    if fast is not None:
        return tuple((t, Box(*box)) for t, box in fast[0].items()), tuple((t, Box(*box)) for t, box in fast[1].items())
    reads = tuple((t, bounding_box(s)) for t, s in poly.footprint(stmt, block).items() if not s.is_empty())
    writes = tuple((t, bounding_box(s)) for t, s in poly.write_footprint(stmt, block).items() if not s.is_empty())
    return reads, writes


@functools.lru_cache(maxsize=1 << 16)
def block_writing(stmt: Statement, tensor: str, box: Box) -> Block | None:
    """The block of output dims (a bounding box) that computes every element of `box` of the tensor the statement
    writes; None when no point writes into the box."""
    translated, ranges = translated_writers(stmt, tensor, box.start, box.stop)  # arithmetic, for most writes
    if translated:
        return None if ranges is None else {dim: span for dim, span in ranges.items() if dim in output_dims(stmt)}
    points = poly.writers(stmt, tensor, box.start, box.stop)
    if points.is_empty():
        return None
    return {dim: (points.dim_min_val(axis).to_python(), points.dim_max_val(axis).to_python() + 1)
            for axis, dim in enumerate(stmt.dims) if dim in output_dims(stmt)}


def blocks(stmt: Statement, tile: Mapping[str, int], order: tuple[str, ...] | None = None) -> Iterator[Block]:
    """Every block of the tiling, row-major over the output dims in `order` (outermost first; domain order by
    default), so that what an outer dim indexes stays the same across the inner dims' tiles."""
    ranges = []
    for dim in order or output_dims(stmt):
        lo, hi = extents(stmt)[dim]
        ranges.append([(dim, (start, min(start + tile[dim], hi))) for start in range(lo, hi, tile[dim])])
    for combination in itertools.product(*ranges):
        yield dict(sorted(combination, key=lambda item: stmt.dims.index(item[0])))


def loop_orders(stmt: Statement, tile: Mapping[str, int]) -> list[tuple[str, ...]]:
    """Candidate loop orders: every permutation of the dims that are actually split (at most 4 of them), with the
    unsplit dims kept in domain order."""
    split = [dim for dim in output_dims(stmt) if tile[dim] < extents(stmt)[dim][1] - extents(stmt)[dim][0]]
    whole = [dim for dim in output_dims(stmt) if dim not in split]
    if len(split) > 4:
        return [output_dims(stmt)]
    return [(*whole, *permutation) for permutation in itertools.permutations(split)]


def middle_block(stmt: Statement, tile: Mapping[str, int]) -> Block:
    """A block away from the borders, whose halo is not clipped by padding: the largest a tile reads."""
    block = {}
    for dim, size in tile.items():
        lo, hi = extents(stmt)[dim]
        start = lo + max(0, (hi - lo - size) // 2)
        block[dim] = (start, min(start + size, hi))
    return block


def largest_tile(stmt: Statement, cost: Callable[[Block], int], budget: int) -> dict[str, int] | None:
    """The largest tile (by greedy halving of the dim that saves most) whose `cost` fits in `budget`.

    Returns None when even a tile of one output element does not fit.
    """
    tile = {dim: hi - lo for dim, (lo, hi) in extents(stmt).items() if dim in output_dims(stmt)}
    while cost(middle_block(stmt, tile)) > budget:
        candidates = [dim for dim, size in tile.items() if size > 1]
        if not candidates:
            return None
        tile = min(({**tile, dim: -(-tile[dim] // 2)} for dim in candidates),
                   key=lambda t: (cost(middle_block(stmt, t)), -sum(t.values())))
    return tile
