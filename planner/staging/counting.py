"""The tiles of one tiling in one loop order, counted by arithmetic where that is exact and listed only when needed.

Per-op staging chooses a tile and a loop order by the bytes the tiles load (an input is reloaded only when its box
changes from one tile to the next) and checks that the largest box of every tensor fits. Listing every tile of every
loop order for that (up to 4! orders, on each shrink of the tile) made vgg19 at 64 KiB plan for more than 25 minutes.
A tensor's box is a product of per-axis ranges, each a closed form in the bounds of the dims that move it
(planner.poly.boxes), so:

- the sum of its box sizes over every distinct position is a product of small per-group sums (planner.poly.grids);
- in a loop order, its box changes exactly when a dim that moves it changes, provided distinct positions give distinct
  boxes: it is loaded once per position of its moving dims, times the tiles of the other dims outside the innermost
  moving one;
- its buffer is as large along each axis as that axis's widest range.

Exact only where the closed forms are the ones `tiling.tile_boxes` itself uses (every tensor accessed once, through
one affine function: `boxes._affine_forms`), every tile touches every tensor, and distinct positions give distinct
boxes (a clamped border can give two tiles the same box). Elsewhere, and with `ENUMERATE` set (the tests compare
both), the tiles are listed as before.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from planner.poly import grids
from planner.poly.boxes import _affine_forms
from planner.stmt import Statement
from planner.tiling import Block, blocks, extents, output_dims, tile_boxes
from simulator.isa import Box

Tile = tuple[Block, dict[str, Box], dict[str, Box]]

ENUMERATE = False  # set (tests) to list every tile instead of counting


@dataclass(frozen=True, slots=True)
class TensorCount:
    """One tensor over every tile: its box sizes summed over the distinct positions of the split dims that move it,
    those dims, its buffer shape, and whether every tile's box is the whole tensor's read box."""

    elements: int
    moves: frozenset[str]
    shape: tuple[int, ...]
    whole: bool


@dataclass(frozen=True, slots=True)
class Counts:
    """The closed-form counts of a tiling: per tensor read and written, and the tile counts per output dim."""

    reads: tuple[tuple[str, TensorCount], ...]
    writes: tuple[tuple[str, TensorCount], ...]
    counts: tuple[tuple[str, int], ...]


def loaded_enumerated(tiles: list[Tile], elem_bytes: Callable[[str], int], in_place: frozenset[str]) -> int:
    """Input bytes loaded over `tiles`, walking them: an input is reloaded only when its box changes."""
    loaded = 0
    held: dict[str, Box] = {}
    for _, reads, _ in tiles:
        for tensor, box in reads.items():
            if tensor not in in_place and held.get(tensor) != box:
                loaded += box.numel * elem_bytes(tensor)
                held[tensor] = box
    return loaded


def shapes_enumerated(stmt: Statement, tiles: list[Tile], in_place: frozenset[str],
                      ) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """Each tensor's buffer shape (the largest box it holds) and the inputs every tile reads whole, walking tiles."""
    whole_reads, _ = tile_boxes(stmt, {})
    shapes = largest_shapes(((reads, writes) for _, reads, writes in tiles), in_place)
    constant = {t for t in whole_reads if t in shapes and all(r.get(t) == whole_reads[t] for _, r, _ in tiles)}
    return shapes, constant


def largest_shapes(boxes: Iterable[tuple[dict[str, Box], dict[str, Box]]], leave_out: frozenset[str] = frozenset(),
                   ) -> dict[str, tuple[int, ...]]:
    """Per tensor (in order of first appearance), the largest extent along each axis over every box it is read or
    written in, `leave_out` left out: the boxes gathered in one pass, their extents compared in arrays."""
    starts: dict[str, list[tuple[int, ...]]] = {}
    stops: dict[str, list[tuple[int, ...]]] = {}
    for reads, writes in boxes:
        for tensor, box in (*reads.items(), *writes.items()):
            if tensor not in leave_out:
                starts.setdefault(tensor, []).append(box.start)
                stops.setdefault(tensor, []).append(box.stop)
    return {t: tuple(int(v) for v in (np.array(stops[t], dtype=np.int64).reshape(len(stops[t]), -1)
                                      - np.array(starts[t], dtype=np.int64).reshape(len(starts[t]), -1)).max(axis=0))
            for t in starts}


@functools.lru_cache(maxsize=1 << 14)
def counts(stmt: Statement, tile: tuple[tuple[str, int], ...]) -> Counts | None:
    """The closed-form counts of tiling `stmt` by `tile` (sizes per output dim), or None where they are not exact."""
    dims = output_dims(stmt)
    forms = _affine_forms(stmt, tuple(sorted(dims)))  # the forms tile_boxes uses for a block over every output dim
    if forms is None:
        return None
    sizes = dict(tile)
    if set(sizes) != set(dims):
        return None
    spans = extents(stmt)
    per_dim = {d: -(-(spans[d][1] - spans[d][0]) // sizes[d]) for d in dims}
    whole_reads, _ = tile_boxes(stmt, {})
    found: tuple[list[tuple[str, TensorCount]], list[tuple[str, TensorCount]]] = ([], [])
    for side, tensor, table in forms:
        whole = whole_reads.get(tensor) if side == 0 else None
        elements, shape, constant = 1, [0] * len(table), whole is not None
        for moved, axes in grids.axis_groups(table):
            positions = list(grids.grid_ranges(table, axes, tuple((d, sizes[d]) for d in moved), spans))
            if len(set(positions)) != len(positions) or any(stop <= start for ranges in positions
                                                            for start, stop in ranges):
                return None  # two positions share a box, or a tile misses the tensor: the walk decides
            elements *= sum(math.prod(stop - start for start, stop in ranges) for ranges in positions)
            for position, axis in enumerate(axes):
                shape[axis] = max(ranges[position][1] - ranges[position][0] for ranges in positions)
                if whole is not None and any(ranges[position] != (whole.start[axis], whole.stop[axis])
                                             for ranges in positions):
                    constant = False
        moves = frozenset(d for bound in table for d in bound.dims if per_dim[d] > 1)
        found[side].append((tensor, TensorCount(elements, moves, tuple(shape), constant)))
    return Counts(tuple(found[0]), tuple(found[1]), tuple(per_dim.items()))


class OrderedTiles:
    """The tiles of `stmt` by `tile` in loop `order` (outermost first, over every output dim): what they load and
    store and the buffers they need, counted where exact; `listed` walks them (staging itself, and the fallback)."""

    def __init__(self, stmt: Statement, tile: dict[str, int], order: tuple[str, ...]) -> None:
        self.stmt, self.tile, self.order = stmt, dict(tile), order
        self.counts = None if ENUMERATE else counts(stmt, tuple(sorted(self.tile.items())))

    @functools.cached_property
    def listed(self) -> list[Tile]:
        return [(block, *tile_boxes(self.stmt, block)) for block in blocks(self.stmt, self.tile, self.order)]

    def __iter__(self) -> Iterator[Tile]:
        return iter(self.listed)

    def loaded(self, elem_bytes: Callable[[str], int], in_place: frozenset[str]) -> int:
        """Input bytes loaded: an input is reloaded only when its box changes from one tile to the next."""
        if self.counts is None:
            return loaded_enumerated(self.listed, elem_bytes, in_place)
        return order_loads(self.counts, self.order, elem_bytes, in_place)

    def written(self, elem_bytes: Callable[[str], int]) -> int:
        """Output bytes stored: every tile's box."""
        if self.counts is None:
            return sum(box.numel * elem_bytes(t) for _, _, writes in self.listed for t, box in writes.items())
        per_dim = dict(self.counts.counts)
        return sum(math.prod(n for d, n in per_dim.items() if d not in count.moves) * count.elements * elem_bytes(t)
                   for t, count in self.counts.writes)

    def shapes(self, in_place: frozenset[str]) -> tuple[dict[str, tuple[int, ...]], set[str]]:
        """Each tensor's buffer shape (its largest box along each axis) and the inputs every tile reads whole."""
        if self.counts is None:
            return shapes_enumerated(self.stmt, self.listed, in_place)
        both = (*self.counts.reads, *self.counts.writes)
        return ({t: count.shape for t, count in both if t not in in_place},
                {t for t, count in self.counts.reads if count.whole and t not in in_place})


def order_loads(found: Counts, order: tuple[str, ...], elem_bytes: Callable[[str], int],
                in_place: frozenset[str]) -> int:
    """Input bytes loaded in loop `order`: each input once per position of the dims that move it, times the tiles of
    the dims outside (before) the innermost of those."""
    per_dim = dict(found.counts)
    total = 0
    for tensor, count in found.reads:
        if tensor in in_place:
            continue
        innermost = max((order.index(d) for d in count.moves), default=-1)
        reloads = math.prod(per_dim[d] for d in order[:max(innermost, 0)] if d not in count.moves)
        total += reloads * count.elements * elem_bytes(tensor)
    return total
