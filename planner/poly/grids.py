"""Sums over the tiles of a tiling from the closed forms of `boxes`: a tensor's box is a product of per-axis ranges,
and each axis depends only on the dims that move it, so a sum over every tile of the box's size is a product of sums
over small grids (one per group of axes that share moving dims), never a walk over every tile.

Shared by the per-operator bound's search (planner.best_unfused) and per-op staging's counting
(planner.staging.counting).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping

from planner.poly.boxes import AxisBounds

Spans = Mapping[str, tuple[int, int]]


def axis_groups(table: tuple[AxisBounds, ...]) -> tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]:
    """A tensor's axes, grouped so that no dim moves axes of two groups: the dims of a group, and its axes. The sum
    of box sizes over all tiles is then the product of the groups' sums."""
    groups: list[tuple[set[str], list[int]]] = []
    for axis, bound in enumerate(table):
        joined = [g for g in groups if g[0] & set(bound.dims)]
        merged = (set(bound.dims).union(*(g[0] for g in joined)), sorted([axis, *(a for g in joined for a in g[1])]))
        groups = [g for g in groups if g not in joined] + [merged]
    return tuple((tuple(sorted(moved)), tuple(axes)) for moved, axes in groups)


def tile_ranges(spans: Spans, dim: str, size: int) -> list[tuple[int, int]]:
    """The (lo, hi) of every tile of `size` along `dim`, in order."""
    lo, hi = spans[dim]
    return [(start, min(start + size, hi)) for start in range(lo, hi, size)]


def grid_ranges(table: tuple[AxisBounds, ...], axes: tuple[int, ...], key: tuple[tuple[str, int], ...],
                spans: Spans) -> Iterator[tuple[tuple[int, int], ...]]:
    """The (start, stop) of each of `axes` at every tile of `key`'s dims (sizes), the last dim fastest; `key` holds
    every dim that moves those axes."""
    grids = [tile_ranges(spans, d, size) for d, size in key]
    for bounds in itertools.product(*grids):
        at = dict(zip((d for d, _ in key), bounds, strict=True))
        found = []
        for axis in axes:
            bound = table[axis]
            arguments = [v for d in bound.dims for v in at[d]]
            found.append((bound.start(*arguments), bound.stop(*arguments)))
        yield tuple(found)


def grid_sum(table: tuple[AxisBounds, ...], axes: tuple[int, ...], key: tuple[tuple[str, int], ...],
             spans: Spans) -> tuple[int, tuple[int, ...]]:
    """Sum over the tiles of `key`'s dims of the product of these axes' extents, and each axis's largest."""
    total, largest = 0, [0] * len(axes)
    for ranges in grid_ranges(table, axes, key, spans):
        product = 1
        for position, (start, stop) in enumerate(ranges):
            extent = max(0, stop - start)
            largest[position] = max(largest[position], extent)
            product *= extent
        total += product
    return total, tuple(largest)


def widest(bound: AxisBounds, sizes: tuple[int, ...], spans: Spans) -> int:
    """The largest extent of one axis over the tiles of the dims that move it (`sizes` in `bound.dims` order)."""
    grids = [tile_ranges(spans, d, size) for d, size in zip(bound.dims, sizes, strict=True)]
    start, stop, largest = bound.start, bound.stop, 0
    for at in itertools.product(*grids):
        arguments = [v for pair in at for v in pair]
        largest = max(largest, stop(*arguments) - start(*arguments))
    return largest
