"""The tilings one statement can be staged with alone: the halving path's tile, the one the by-bytes search
(planner.tiling_prices) finds, with two slots or one per operand, and the split reduction; each with the DRAM bytes
it moves. Staging (planner.staging.op) stages one of them, and the cost model (planner.schedule.op_choice) prices
them to choose.

A tile's buffers are sized on its largest box: the tile is chosen on a middle block, and a block at a border can read
more (padding shifts its halo), so a tile whose real buffers do not fit is shrunk and chosen again.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from planner.errors import PlanError, TileTooLarge
from planner.schedule.ir import OpTiling
from planner.staging.builder import ProgramBuilder
from planner.staging.counting import OrderedTiles, Tile, loaded_enumerated, shapes_enumerated
from planner.staging.split import split_dim, split_slices
from planner.staging.tile import choose_tile, op_cycles
from planner.stmt import Statement
from planner.tiling import Block, extents, loop_orders, middle_block, output_dims, tile_boxes
from planner.tiling_prices import op_choices

MAX_SHRINKS = 16
CYCLES_SLACK = 1.1  # how much slower (estimated) than the halving path's tile a tile that moves fewer bytes may be


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
              in_place: frozenset[str] = frozenset(), slots: int = 2) -> int:
    """Bytes per partition the buffers of one tile take: `slots` per input and output (two: double buffering), one
    for an input whose box is the same for every tile (weights tiled only spatially), none for tensors read in
    place."""
    whole_reads, _ = tile_boxes(stmt, {})
    reads, writes = tile_boxes(stmt, block)
    total = sum((1 if box == whole_reads[t] else slots) * partition_bytes(t, box.shape)
                for t, box in reads.items() if t not in in_place)
    return total + sum(slots * partition_bytes(t, box.shape) for t, box in writes.items() if t not in in_place)


def choose_tiling(builder: ProgramBuilder, stmt: Statement, in_place: frozenset[str], capacity: int,
                  objective: str = "traffic") -> OpTiling:
    """Of `tiling_choices`, the one that moves the fewest DRAM bytes (ties: double buffering, then the split, then
    one slot): what staging stages when no schedule chose (planner.schedule.op_choice prices the choices instead)."""
    return min(tiling_choices(builder, stmt, in_place, capacity, objective), key=lambda c: c[:2])[2]


def tiling_choices(builder: ProgramBuilder, stmt: Statement, in_place: frozenset[str], capacity: int,
                   objective: str = "traffic") -> list[tuple[int, int, OpTiling]]:
    """How `stmt` can be tiled alone in `capacity` bytes per partition, with the tensors in `in_place` read and
    written where they lie: (DRAM bytes, tie rank, tiling) for each kind that fits, the tilings both staging and the
    cost model (planner.schedule.op_choice) use. Under the `traffic` objective (the default) single-buffered tiles
    are among them where they move fewer bytes; under any other, only where nothing double-buffered fits. Raises
    TileTooLarge (or PlanError) when nothing fits."""
    graph = builder.graph
    spans = extents(stmt)
    touched = in_place & {*stmt.tensors_read, stmt.writes[0].tensor}

    def cost(block: Block, slots: int = 2) -> int:
        if stmt.indirect and stmt.indirect.view and any(
                block.get(dim, spans[dim]) != spans[dim] for dim in stmt.indirect.index_dims):
            return capacity + 1  # indices read as a view must stay whole: the DMA reads them in row-major order
        return tile_cost(stmt, block, lambda t, shape: builder.partition_bytes(shape, graph.elem_bytes(t)),
                         touched, slots)

    minimal = {dim: 1 for dim in output_dims(stmt)}
    operands = len({*stmt.tensors_read, stmt.writes[0].tensor} - touched)

    moved: dict[int, int] = {}  # slots -> the DRAM bytes of the tiling fit(slots) found

    def bytes_of(tiles: OrderedTiles) -> int:
        return tiles.loaded(graph.elem_bytes, frozenset()) + tiles.written(graph.elem_bytes)

    def fit(slots: int) -> OpTiling | TileTooLarge:
        """The tiling with `slots` slots per operand that changes between tiles, or why none fits: the halving
        path's, unless the by-bytes search finds one that moves fewer DRAM bytes and costs at most CYCLES_SLACK more
        estimated cycles (a byte-minimal tile can leave the array idle: resnet50's strided 1x1 downsample ran 36x
        longer in 2x fewer bytes)."""
        halved = fit_halving(slots)
        if isinstance(halved, TileTooLarge) or stmt.indirect is not None:
            return halved
        dtype = graph.planning_dtype or "fp32"
        limit = op_cycles(stmt, dict(halved.tile), builder.machine, dtype, operands) * CYCLES_SLACK
        searched = _searched(builder, stmt, capacity, slots, operands, touched, moved[slots], limit)
        if searched is None:
            return halved
        tile, order, tiles = searched
        if bytes_of(tiles) >= moved[slots]:  # the closed form priced its own loop order; staging's may differ
            return halved
        moved[slots] = bytes_of(tiles)
        return OpTiling(tuple(tile.items()), order, slots=slots)

    def fit_halving(slots: int) -> OpTiling | TileTooLarge:
        """The largest tile by bytes that fits, shrunk while its buffers do not (the baseline's first choice)."""
        target = capacity
        for _ in range(MAX_SHRINKS):
            # The largest tile by bytes, widened where that costs no room and saves cycles (planner.staging.tile).
            tile = choose_tile(stmt, lambda block: cost(block, slots), target, builder.machine,
                               graph.planning_dtype or "fp32", operands)
            if tile is None:
                middle = middle_block(stmt, minimal)
                if cost(middle, slots) > capacity:  # one block alone is too large: no need to look at the others
                    return _too_large(builder, stmt, middle, cost(middle), capacity, touched)
                tile = minimal  # the last resort, whose border blocks may still need more
            order, tiles = _cheapest_order(stmt, tile, graph.elem_bytes, touched)
            # The tile was sized on one block; a block at a border can read more (padding shifts its halo), and the
            # buffers must hold the largest of all: if they do not fit, aim lower and tile again.
            need = buffer_shapes(builder, stmt, tiles, touched, slots)[2]
            if need <= capacity:
                moved[slots] = bytes_of(tiles)
                return OpTiling(tuple(tile.items()), order, slots=slots)
            if tile == minimal:
                return _too_large(builder, stmt, None, need, capacity, touched)
            target -= need - capacity
        raise PlanError(f"{graph.source}: op {stmt.node!r} ({stmt.op_type}): no tiling fits its buffers in "
                        f"{capacity:,} bytes per partition")

    # Three kinds of tiling: double-buffered whole-reduction tiles (the next tile's loads run ahead of this one's
    # compute); a split reduction, partial sums on chip; single-buffered whole-reduction tiles, which cannot prefetch
    # but have twice the room, so larger tiles read an operand fewer times (a tight conv chain's 3x3 conv: 27,700
    # bytes against 47,400 split and 100,192 double-buffered). These are the spaces planner.best_unfused bounds.
    # Under `latency` one slot is only the last resort (a BatchNormalization's four channel parameters at 8 KiB).
    found = fit(2)
    whole_reads, whole_writes = tile_boxes(stmt, {})
    least = sum(box.numel * graph.elem_bytes(t) for t, box in [*whole_reads.items(), *whole_writes.items()])
    if isinstance(found, OpTiling) and moved[2] <= least:
        return [(moved[2], 0, found)]  # every input read once: nothing moves less, nothing is faster
    choices: list[tuple[int, int, OpTiling]] = []
    if isinstance(found, OpTiling):
        choices.append((moved[2], 0, found))
    if isinstance(found, TileTooLarge) or objective == "traffic":
        single = fit(1)
        if isinstance(single, OpTiling) and (not choices or moved[1] < moved[2]):
            choices.append((moved[1], 2, single))
    if split_dim(builder, stmt) is not None and not touched:  # even beside one slot reading all once: it is faster
        split = _split_bytes(builder, stmt, capacity)
        if split is not None:
            choices.append((split, 1, OpTiling((), (), split=True)))
    if not choices:
        assert isinstance(found, TileTooLarge)
        raise found
    return choices


def _searched(builder: ProgramBuilder, stmt: Statement, capacity: int, slots: int, operands: int,
              in_place: frozenset[str], below: int, cycles: float,
              ) -> tuple[dict[str, int], tuple[str, ...], OrderedTiles] | None:
    """The tiling that moves the fewest DRAM bytes (planner.tiling_prices' search and prices) and whose buffers
    fit, moving fewer than `below` and estimated at most `cycles`, ties broken by the estimated cycles, with the
    tensors in `in_place` read and written where they lie; None when the search found none (the halving path's tile
    then stays)."""
    graph = builder.graph
    choices = op_choices(builder.lowered, stmt, builder.machine, capacity, slots, in_place)
    dtype = graph.planning_dtype or "fp32"
    for attempt, (total, group) in enumerate(itertools.groupby(choices, key=lambda choice: choice[0])):
        if attempt >= MAX_SHRINKS or total >= below:
            return None
        ranked = sorted((op_cycles(stmt, dict(tile), builder.machine, dtype, operands), tile, order)
                        for _, tile, order in group)
        for estimate, sizes, order in ranked:
            if estimate > cycles:
                break
            tile = dict(sizes)
            tiles = OrderedTiles(stmt, tile, _full_order(stmt, order))
            if buffer_shapes(builder, stmt, tiles, in_place, slots)[2] <= capacity:
                return tile, _full_order(stmt, order), tiles
    return None


def _full_order(stmt: Statement, order: tuple[str, ...]) -> tuple[str, ...]:
    """A loop order over every output dim: the unsplit ones outermost in domain order, as `loop_orders` gives."""
    return (*(d for d in output_dims(stmt) if d not in order), *order)


def buffer_shapes(builder: ProgramBuilder, stmt: Statement, tiles: OrderedTiles | list[Tile],
                  in_place: frozenset[str], slots: int) -> tuple[dict[str, tuple[int, ...]], set[str], int]:
    """Each tensor's buffer shape (the largest box it holds), the inputs every tile reads whole (one slot), and the
    bytes per partition all that takes: counted (planner.staging.counting) or from the tiles listed."""
    graph = builder.graph
    shapes, constant = tiles.shapes(in_place) if isinstance(tiles, OrderedTiles) else \
        shapes_enumerated(stmt, tiles, in_place)
    need = sum((1 if t in constant else slots) * builder.partition_bytes(shape, graph.elem_bytes(t))
               for t, shape in shapes.items())
    return shapes, constant, need


def _split_bytes(builder: ProgramBuilder, stmt: Statement, capacity: int) -> int | None:
    """The DRAM bytes the split reduction (planner.staging.split) moves; None when it does not fit."""
    graph = builder.graph
    reduction = split_dim(builder, stmt)
    assert reduction is not None
    hi = extents(stmt)[reduction][1]
    try:
        slices = split_slices(builder, stmt, capacity, reduction)
    except PlanError:
        return None
    return sum(box.numel * graph.elem_bytes(t) for _, _, reads, _ in slices for t, box in reads.items()) + sum(
        box.numel * graph.elem_bytes(t) for _, step, _, writes in slices if step[1] == hi for t, box in writes.items())


def _loaded(stmt: Statement, tiles: list[Tile], elem_bytes: Callable[[str], int], in_place: frozenset[str]) -> int:
    """Input bytes loaded over `tiles` listed: an input is reloaded only when its box changes."""
    return loaded_enumerated(tiles, elem_bytes, in_place)


def _cheapest_order(stmt: Statement, tile: dict[str, int], elem_bytes: Callable[[str], int], in_place: frozenset[str],
                    ) -> tuple[tuple[str, ...], OrderedTiles]:
    """The loop order that loads the fewest bytes, and its tiles: an input is reloaded only when its box changes, so
    the order decides which operand is read once and which once per tile of the other. Counted by arithmetic where
    exact (planner.staging.counting); the tiles are listed only for the order chosen, and only if asked."""
    best: tuple[int, tuple[str, ...], OrderedTiles] | None = None
    for order in loop_orders(stmt, tile):
        tiles = OrderedTiles(stmt, tile, order)
        loaded = tiles.loaded(elem_bytes, in_place)
        if best is None or loaded < best[0]:
            best = (loaded, order, tiles)
    assert best is not None
    return best[1], best[2]
