"""Every tiling of one op alone that planner.staging can emit, priced by arithmetic: the space the best unfused bound
(planner.best_unfused) takes its minimum over, and per-op staging (planner.staging.op_tilings, planner.staging.split)
chooses from, so that a plan moves what these prices say.

The space searched, per op, is the union of two:
- *whole-reduction tilings* (`op_choices(slots=1)`): a tile is a block of the output dims, the reduction whole, with
  one buffer per tensor, as large as the largest box it takes, aligned as the allocator aligns: what
  planner.staging.op_tilings stages with one slot per operand (a single-buffered tile, which cannot prefetch the next
  tile during its compute). A double-buffered tiling moves the same bytes as the single-slot one of its tile, in twice
  the room, so it is in this space too;
- *split reductions* (`op_choices(split=...)`), for the ops planner.staging.split splits (Conv with one group on its
  input channels, MatMul and Gemm on k): a block of the output dims and a slice of the reduction, smaller than its
  extent, with the buffers split staging allocates: two slots per input, a running sum at accumulator precision
  (`ACCUMULATOR_BYTES`) and a finished tile in the output's precision; every slice loads every input it reads and the
  output is written once.

Within each: tile sizes ceil(extent / n) for n in 1..8, every power of two (so every halving the baseline takes is in
it) and the extent (tiles of one point); every loop order of the split output dims (the reduction innermost); an
input is read again only when its box changes from one tile to the next.

Two prunings keep it fast and exact within that space: along a dim whose every index is affine without gaps, only
tiles that cannot grow and still fit are priced (a larger tile there never reads more); a dim some view reads through
floor divisions gets the halvings and divisors only, every one of them priced. When the later dims of the search
are all affine and fit whole, their whole is the one completion priced (any other is smaller along an affine dim).

A tiling's room is the sum over tensors of its buffers, and each axis of a buffer depends only on the sizes of the
dims that move it: the axes' widths are found once per size, the room once per tiling.

Boxes come from closed forms isl gives once per op (`poly.tile_box_functions`); candidates are priced by arithmetic.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator

import islpy as isl

from planner import poly
from planner.poly import grids
from planner.staging.alloc import buffer_bytes
from planner.stmt import LoweredGraph, Statement
from planner.tiling import extents, output_dims
from simulator.machine import MachineConfig

ACCUMULATOR_BYTES = 4  # partial sums in fp32 for float planning dtypes, int32 for int8
MAX_ORDERED = 4  # beyond this many split output dims, the loop order is the domain's


def candidate_sizes(extent: int) -> tuple[int, ...]:
    """Tile sizes along a dim of `extent` points, ascending.

    >>> candidate_sizes(20)
    (1, 2, 3, 4, 5, 7, 10, 20)
    """
    counts = {*range(1, 9), extent, *(1 << i for i in range(extent.bit_length() + 1))}
    return tuple(sorted({-(-extent // n) for n in counts if n <= extent}))


def halvings_and_divisors(extent: int) -> tuple[int, ...]:
    """Sizes ceil(extent / 2^i) and the divisors of extent, ascending.

    >>> halvings_and_divisors(12)
    (1, 2, 3, 4, 6, 12)
    """
    halvings = {-(-extent // (1 << i)) for i in range(extent.bit_length() + 1)}
    return tuple(sorted(halvings | {d for d in range(1, extent + 1) if extent % d == 0}))


def op_choices(lowered: LoweredGraph, stmt: Statement, machine: MachineConfig, capacity: int, slots: int = 2,
               in_place: frozenset[str] = frozenset(), split: str | None = None,
               ) -> tuple[tuple[int, tuple[tuple[str, int], ...], tuple[str, ...]], ...]:
    """The whole-reduction tilings of `stmt` (output dims only) whose buffers should fit `capacity` bytes per
    partition with `slots` buffers per operand that changes between tiles (one for an input no split dim moves), as
    (DRAM bytes, tile sizes per output dim, loop order), cheapest first: the space planner.best_unfused.op_bound
    searches, for staging to choose from (planner.staging.op_tilings.choose_tiling checks the real buffers). Tensors
    in `in_place` (kept whole by a fused group) take no buffer and move no byte. Empty when isl gives no closed form.

    With `split` (a reduction dim), the slicings planner.staging.split stages instead: the tile also has a size
    along `split`, smaller than its extent; every slice loads every input it reads into one of two slots, and the
    output tile takes a running sum at accumulator precision and a finished buffer (the order is then immaterial).

    >>> # op_choices(lowered, stmt, machine, machine.scratchpad.partition_bytes)[0]  # (bytes, tile, order)
    """
    key = (poly.structure_key(stmt), tuple(lowered.graph.elem_bytes(t) for t in
                                           (*stmt.tensors_read, *(a.tensor for a in stmt.writes))),
           machine.scratchpad, capacity, slots, tuple(t in in_place for t in
                                                      (*stmt.tensors_read, *(a.tensor for a in stmt.writes))),
           split)
    if key not in _CHOICES:
        if len(_CHOICES) >= _CHOICES_KEPT:
            _CHOICES.pop(next(iter(_CHOICES)))
        spans = extents(stmt)
        named = (*output_dims(stmt), *((split,) if split else ()))
        dims = tuple(d for d in named if spans[d][1] - spans[d][0] > 1)
        try:
            tilings, _ = priced_tilings(lowered, stmt, machine, dims, capacity, slots, in_place, split)
        except isl.Error:  # e.g. "cannot handle void expression" for an empty access relation
            tilings = []
        if split:
            tilings = [t for t in tilings if split in t[1] and t[1][split] < spans[split][1] - spans[split][0]]
        whole = {d: spans[d][1] - spans[d][0] for d in named}
        _CHOICES[key] = tuple(sorted(((total, tuple({**whole, **tile}.items()), order)
                                      for total, tile, order in tilings), key=lambda item: item[0]))
    return _CHOICES[key]



_CHOICES_KEPT = 4096
_CHOICES: dict[tuple[object, ...], tuple[tuple[int, tuple[tuple[str, int], ...], tuple[str, ...]], ...]] = {}

Priced = tuple[int, dict[str, int], tuple[str, ...]]


def priced_tilings(lowered: LoweredGraph, stmt: Statement, machine: MachineConfig, dims: tuple[str, ...],
                    capacity: int, slots: int, in_place: frozenset[str] = frozenset(), sliced: str | None = None,
                    ) -> tuple[list[Priced], Priced]:
    """Every tiling of `dims` the search prices that fits `capacity` (bytes, tile, order), and the smallest tile's;
    `sliced` prices the slices of a split reduction as planner.staging.split stages them (see `op_choices`)."""
    graph = lowered.graph
    reductions = tuple(d for d in dims if d not in output_dims(stmt))
    reads, writes = poly.tile_box_functions(stmt, dims)
    spans = extents(stmt)
    (output, _), = writes.items()
    sp = machine.scratchpad

    @functools.cache
    def component(tensor: str, axes: tuple[int, ...], key: tuple[tuple[str, int], ...]) -> tuple[int, tuple[int, ...]]:
        """Sum over the tiles of `key`'s dims of the product of these axes' extents, and each axis's largest."""
        return grids.grid_sum(writes[tensor] if tensor == output else reads[tensor], axes, key, spans)

    tables = {**reads, output: writes[output]}
    groups = {tensor: grids.axis_groups(table) for tensor, table in tables.items()}
    moved_by = {tensor: frozenset(d for bound in table for d in bound.dims) for tensor, table in tables.items()}
    elem_bytes = {tensor: graph.elem_bytes(tensor) for tensor in tables}

    @functools.cache
    def widest(tensor: str, axis: int, key: tuple[int, ...]) -> int:
        """The largest extent of one axis over the tiles of the dims that move it (sizes `key`, in bound.dims
        order): the same figure `component` finds for the axis, from a walk over those dims alone."""
        return grids.widest(tables[tensor][axis], key, spans)

    def boxes(tensor: str, tile: dict[str, int]) -> tuple[int, tuple[int, ...], frozenset[str]]:
        """Elements summed over the distinct boxes of the tiling, the largest box's shape, and the split dims it
        moves with."""
        total, shape = 1, [0] * len(tables[tensor])
        for moved, axes in groups[tensor]:
            count, largest = component(tensor, axes, tuple((d, tile[d]) for d in moved))
            total *= count
            for axis, extent in zip(axes, largest, strict=True):
                shape[axis] = extent
        return total, tuple(shape), frozenset(d for d in moved_by[tensor] if tile[d] < spans[d][1] - spans[d][0])

    @functools.cache
    def room(shape: tuple[int, ...], elem: int) -> int:
        return 0 if 0 in shape else buffer_bytes(shape, elem, sp)

    full = tuple(spans[d][1] - spans[d][0] for d in dims)
    position = {d: i for i, d in enumerate(dims)}
    split_at = tuple(position[d] for d in reductions)
    axis_dims = {tensor: tuple(tuple(position[d] for d in bound.dims) for bound in table)
                 for tensor, table in tables.items()}

    @functools.cache
    def need_of(key: tuple[int, ...]) -> int:
        """Bytes per partition of one buffer per tensor, each as large as the largest box it takes."""
        split_reduction = any(key[i] < full[i] for i in split_at)
        total = 0
        for tensor, per_axis in axis_dims.items():
            if tensor in in_place:
                continue
            shape = tuple(widest(tensor, axis, tuple(key[i] for i in at)) for axis, at in enumerate(per_axis))
            if sliced and tensor == output:  # the running sum and the finished tile
                total += room(shape, ACCUMULATOR_BYTES) + room(shape, elem_bytes[tensor])
                continue
            moves = sliced or tensor == output or any(key[i] < full[i] for at in per_axis for i in at)
            total += (slots if moves else 1) * room(
                shape, ACCUMULATOR_BYTES if tensor == output and split_reduction else elem_bytes[tensor])
        return total

    def need(tile: dict[str, int]) -> int:
        return need_of(tuple(tile[d] for d in dims))

    def price(tile: dict[str, int]) -> tuple[int, tuple[str, ...]]:
        counts = {d: -(-(spans[d][1] - spans[d][0]) // tile[d]) for d in dims}
        split = [d for d in dims if counts[d] > 1 and d not in reductions]
        inner = [d for d in reductions if counts[d] > 1]
        orders = itertools.permutations(split) if len(split) <= MAX_ORDERED else [tuple(split)]
        priced = {tensor: boxes(tensor, tile) for tensor in (*reads, output)}
        if sliced:  # every slice loads every input: once per tile of the dims that do not move it
            return priced[output][0] * elem_bytes[output] + sum(
                math.prod(counts[d] for d in dims if d not in moves) * elements * elem_bytes[tensor]
                for tensor, (elements, _, moves) in priced.items() if tensor in reads), tuple(dims)
        best: tuple[int, tuple[str, ...]] | None = None
        for order in orders:
            loops = [*order, *inner]
            total = 0 if output in in_place else priced[output][0] * elem_bytes[output]
            for tensor in reads:
                if tensor in in_place:
                    continue
                elements, _, moves = priced[tensor]
                # reloaded once per tile of the dims outside its innermost moving one; loaded once if none moves it
                innermost = max((loops.index(d) for d in moves if d in loops), default=0)
                reloads = math.prod(counts[d] for d in loops[:innermost] if d not in moves)
                total += reloads * elements * elem_bytes[tensor]
            if best is None or total < best[0]:
                best = (total, tuple(loops))
        assert best is not None
        return best

    # A dim whose every box is affine never gains from a smaller tile, so only tiles that cannot grow along it are
    # priced; a dim some view reads through floor divisions (a flattened tensor) may, so all of its sizes are.
    monotone = frozenset(d for d in dims if all(bound.affine for table in (*reads.values(), *writes.values())
                                                for bound in table if d in bound.dims))
    # A dim that is not monotone gets the halvings and the divisors only: the baseline's sizes, and the sizes whose
    # tiles line up with a view's rows.
    sizes = {d: candidate_sizes(spans[d][1] - spans[d][0]) if d in monotone else
             halvings_and_divisors(spans[d][1] - spans[d][0]) for d in dims}
    # With more than one slot, a dim whole may need less room than split (an input it moves then takes one slot).
    whole_first = frozenset(reductions) if slots == 1 else frozenset(dims)
    priced = [(*price(tile), tile) for tile in _fitting_tiles(dims, sizes, lambda t: need(t) <= capacity, monotone,
                                                              whole_first)]
    smallest = {d: 1 for d in dims}
    total, order = price(smallest)
    return [(bytes_moved, tile, loops) for bytes_moved, loops, tile in priced], (total, smallest, order)


def _fitting_tiles(dims: tuple[str, ...], sizes: dict[str, tuple[int, ...]], fits: Callable[[dict[str, int]], bool],
                   monotone: frozenset[str], whole_first: frozenset[str]) -> Iterator[dict[str, int]]:
    """Every tile whose buffers fit and that cannot grow along a `monotone` dim and still fit, found dim by dim: a
    dim's sizes are tried ascending with the later dims at their smallest, and the search stops at the first that
    does not fit (a larger tile never needs less room, but for the whole of a `whole_first` dim)."""

    def grows(tile: dict[str, int]) -> bool:
        for dim in monotone:
            larger = [size for size in sizes[dim] if size > tile[dim]]
            if larger and fits({**tile, dim: larger[0]}):
                return True
        return False

    def room_for(prefix: dict[str, int], later: tuple[str, ...]) -> bool:
        """Whether some completion of the prefix may fit: the later dims at their smallest, or a later reduction
        whole (no accumulator)."""
        smallest = {**prefix, **{d: sizes[d][0] for d in later}}
        return fits(smallest) or any(fits({**smallest, d: sizes[d][-1]}) for d in later if d in whole_first)

    def extend(prefix: dict[str, int], rest: tuple[str, ...]) -> Iterator[dict[str, int]]:
        if not rest:
            if not grows(prefix):
                yield dict(prefix)
            return
        largest = {**prefix, **{d: sizes[d][-1] for d in rest}}
        if monotone.issuperset(rest) and fits(largest):
            # every other completion is smaller along some monotone dim, so it reads no less than this one
            if not grows(largest):
                yield largest
            return
        dim, later = rest[0], rest[1:]
        fitting = []
        for size in sizes[dim]:
            if not room_for({**prefix, dim: size}, later):
                break
            fitting.append(size)
        # A whole reduction needs no accumulator, so it may fit where a split one does not.
        if dim in whole_first and sizes[dim][-1] not in fitting and room_for({**prefix, dim: sizes[dim][-1]}, later):
            fitting.append(sizes[dim][-1])
        if not later and dim in monotone:
            fitting = fitting[-1:]
        for size in fitting:
            yield from extend({**prefix, dim: size}, later)

    if dims or fits({}):
        yield from extend({}, dims)
