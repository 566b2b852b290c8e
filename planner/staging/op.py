"""Staging one statement: its tiles, their double-buffered (or, where that moves less, single-buffered) loads,
computes and stores.

Both strategies stage through here. The baseline passes no residency: every input comes from DRAM and every output
goes back. The fused strategy passes the tensors it keeps whole in the scratchpad across ops: a tile reads those in
place (at its box's position in the whole-tensor buffer) and writes them in place, with no DMA at all, and the tile
search only has the room those resident buffers leave.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from planner.best_unfused import op_choices
from planner.errors import PlanError, TileTooLarge
from planner.schedule.ir import OpTiling
from planner.staging.builder import ProgramBuilder, boxes_meet
from planner.staging.counting import OrderedTiles, Tile, loaded_enumerated, shapes_enumerated
from planner.staging.split import split_dim, split_slices, stage_split_reduction
from planner.staging.tile import choose_tile, mnk_of, op_cycles
from planner.stmt import Statement
from planner.tiling import Block, block_size, blocks, extents, loop_orders, middle_block, output_dims, tile_boxes
from simulator.isa import Box

__all__ = ["Resident", "choose_tiling", "mnk_of", "stage_statement", "tile_cost", "tiling_choices"]

MAX_SHRINKS = 16
CYCLES_SLACK = 1.1  # how much slower (estimated) than the halving path's tile a tile that moves fewer bytes may be


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
            if _buffers(builder, stmt, tiles, touched, slots)[2] <= capacity:
                moved[slots] = bytes_of(tiles)
                return OpTiling(tuple(tile.items()), order, slots=slots)
            if tile == minimal:
                return _too_large(builder, stmt, None, _buffers(builder, stmt, tiles, touched, slots)[2], capacity,
                                  touched)
            target -= _buffers(builder, stmt, tiles, touched, slots)[2] - capacity
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
    """The tiling that moves the fewest DRAM bytes (planner.best_unfused's search and prices) and whose buffers
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
            if _buffers(builder, stmt, tiles, in_place, slots)[2] <= capacity:
                return tile, _full_order(stmt, order), tiles
    return None


def _full_order(stmt: Statement, order: tuple[str, ...]) -> tuple[str, ...]:
    """A loop order over every output dim: the unsplit ones outermost in domain order, as `loop_orders` gives."""
    return (*(d for d in output_dims(stmt) if d not in order), *order)


def _buffers(builder: ProgramBuilder, stmt: Statement, tiles: OrderedTiles | list[Tile], in_place: frozenset[str],
             slots: int) -> tuple[dict[str, tuple[int, ...]], set[str], int]:
    """Each tensor's buffer shape (the largest box it holds), the inputs every tile reads whole (one slot), and the
    bytes per partition all that takes: counted (planner.staging.counting) or from the tiles listed."""
    graph = builder.graph
    shapes, constant = tiles.shapes(in_place) if isinstance(tiles, OrderedTiles) else \
        shapes_enumerated(stmt, tiles, in_place)
    need = sum((1 if t in constant else slots) * builder.partition_bytes(shape, graph.elem_bytes(t))
               for t, shape in shapes.items())
    return shapes, constant, need


def stage_statement(builder: ProgramBuilder, stmt: Statement, resident: Mapping[str, Resident] | None = None,
                    budget: int | None = None, tiling: OpTiling | None = None) -> None:
    """Emit the tiles of one statement; tensors in `resident` are read and written in place. A `tiling` chosen
    beforehand (planner.schedule) is staged as it is; without one it is chosen here (`choose_tiling`)."""
    resident = resident or {}
    graph = builder.graph
    capacity = builder.machine.scratchpad.partition_bytes if budget is None else budget
    in_place = frozenset(resident)
    if tiling is None:
        tiling = choose_tiling(builder, stmt, in_place, capacity)
    if tiling.split:
        reduction = split_dim(builder, stmt)
        assert reduction is not None, f"{stmt.name}: a split tiling of an op with no reduction to split"
        stage_split_reduction(builder, stmt, capacity, reduction)
        return
    slots = tiling.slots
    tiles = [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, dict(tiling.tile), tiling.order)]
    shapes, constant, _ = _buffers(builder, stmt, tiles, in_place, slots)
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
            last_reader[out_buffer] = builder.store(out_buffer, out_tensor, out_box, [compute], stmt.node)
    for tensor_buffers in buffers.values():
        for buffer in tensor_buffers:
            if buffer in last_reader:
                builder.release(buffer, last_reader[buffer])


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
