"""Fusion groups: runs of ops executed tile by tile together, so that their intermediates never leave the chip.

A group is a run of consecutive statements whose only tensor used after it is the output of its last statement (the
sink). The group is tiled on the sink's output: along the batch axis, or along rows (axis 2 of an NCHW tensor) when
the batch is 1. A tile of the sink pulls, through isl, the footprint it reads from each producer in the group, back
to the group's inputs; so a 3x3 conv -> 3x3 conv tile of 4 rows computes 6 rows of the first conv (the halo).

Overlapping halos are handled one of two ways per group:

- **recompute**: every intermediate of a tile lives in a buffer of its own, sized to the tile's box, and the rows
  two tiles share are computed by both;
- **cache**: every intermediate is kept whole for the group's lifetime, and each tile computes only the rows no tile
  before it did; the rows it shares with the last tile are read where that tile left them;
- **line buffers** (cache with `lines`): as cache, but each tile holds only the rows of each intermediate and input
  it reads or writes, the rows the next tile shares carried over on chip (planner.staging.lines).

Caching computes nothing twice but holds the whole intermediates; recomputing holds one tile of each. A group caches
when the intermediates fit and the tiles would recompute; the tile is the largest whose working set fits.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block, block_size, block_writing, tile_boxes
from simulator.isa import Box

IN_FLIGHT = 2  # independent tiles a group interleaves at once


@dataclass(frozen=True, slots=True)
class Group:
    """Statements `first..last` (inclusive, program order), tiled on the sink's output in boxes of `tile`.

    `slots` is how many tiles a recomputing group has in flight: 2 interleaves two tiles and loads the next tile's
    inputs ahead of this tile's computes; 1 runs one tile at a time, loading its inputs when it starts (for a tile
    that fits the scratchpad only once)."""

    first: int
    last: int
    tile: tuple[int, ...]
    cache: bool
    slots: int = 2
    lines: bool = False  # with cache: hold only the rows later tiles read (planner.staging.lines), not whole tensors
    streamed: bool = False  # constants loaded per tile, as far as each tile reads them (see `constant_boxes`)

    def __post_init__(self) -> None:
        if self.slots not in (1, 2) or (self.cache and self.slots != 2) or (self.lines and not self.cache) or \
                (self.streamed and self.cache):
            raise ValueError(f"group {self.first}..{self.last}: {self.slots} slots, cache {self.cache}, lines "
                             f"{self.lines}, streamed {self.streamed}")


@dataclass(frozen=True, slots=True)
class Step:
    """One statement's share of one group tile: the block it computes, and the boxes the block reads and writes."""

    index: int
    block: Block
    reads: dict[str, Box]
    output: str
    box: Box


def sink_tensor(stmt: Statement) -> str:
    if len(stmt.writes) == 1:  # nearly every statement; the search asks this hundreds of thousands of times
        return stmt.writes[0].tensor
    (tensor,) = {access.tensor for access in stmt.writes}
    return tensor


@functools.lru_cache(maxsize=64)  # the search asks of thousands of statement ranges of one graph
def tensor_uses(lowered: LoweredGraph) -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]], frozenset[str]]:
    """Per tensor the statements that read it (an indirect read's table and indices too) and the statements that
    write it, by index in program order; and the model outputs."""
    readers: dict[str, list[int]] = {}
    writers: dict[str, list[int]] = {}
    for index, stmt in enumerate(lowered.statements):
        read = [*stmt.tensors_read, *((stmt.indirect.table, stmt.indirect.indices) if stmt.indirect else ())]
        for tensor in dict.fromkeys(read):
            readers.setdefault(tensor, []).append(index)
        for tensor in dict.fromkeys(access.tensor for access in stmt.writes):
            writers.setdefault(tensor, []).append(index)
    outputs = frozenset(lowered.base(name) for name in lowered.graph.outputs)
    return ({t: tuple(i) for t, i in readers.items()}, {t: tuple(i) for t, i in writers.items()}, outputs)


def tiles(lowered: LoweredGraph, group: Group) -> list[list[Step]]:
    """The steps of every tile, in program order; raises NotCacheable if a cached group's tiles are not monotone."""
    return _tiles(lowered, group.first, group.last, group.tile, group.cache)


@functools.lru_cache(maxsize=1024)  # keyed without the slots and lines, which change how tiles run, not what they are
def _tiles(lowered: LoweredGraph, first: int, last: int, tile: tuple[int, ...], cache: bool) -> list[list[Step]]:
    starts = _starts(lowered, last, tile)
    if not cache:
        return [_independent_tile(lowered, first, last, tile, start) for start in starts]
    return _pulls(lowered, last, tile, tuple(starts), True).steps(first)


def sample_tiles(lowered: LoweredGraph, group: Group) -> tuple[list[list[Step]], int]:
    """A few tiles that bound the others (both borders, and the middle), and the number of tiles; every tile of a
    cached group, since each depends on the ones before it."""
    starts = tile_starts(lowered, group)
    if group.cache or len(starts) <= 5:
        return tiles(lowered, group), len(starts)
    picks = sorted({0, 1, len(starts) // 2, len(starts) - 2, len(starts) - 1})
    return [_independent_tile(lowered, group.first, group.last, group.tile, starts[i]) for i in picks], len(starts)


class NotCacheable(Exception):
    """The rows a tile needs are not a contiguous extension of what the tiles before it computed."""


def tile_starts(lowered: LoweredGraph, group: Group) -> list[tuple[int, ...]]:
    return list(_starts(lowered, group.last, group.tile))


@functools.lru_cache(maxsize=1024)
def _starts(lowered: LoweredGraph, last: int, tile: tuple[int, ...]) -> list[tuple[int, ...]]:
    shape = lowered.graph.tensors[sink_tensor(lowered.statements[last])].shape
    starts: list[tuple[int, ...]] = [()]
    for extent, size in zip(shape, tile, strict=True):
        starts = [(*prefix, lo) for prefix in starts for lo in range(0, extent, size)]
    return starts


@functools.lru_cache(maxsize=4096)
def _independent_tile(lowered: LoweredGraph, first: int, last: int, tile: tuple[int, ...], start: tuple[int, ...],
                      ) -> list[Step]:
    return _pulls(lowered, last, tile, (start,), False).steps(first)[0]


@functools.lru_cache(maxsize=1 << 13)
def _pulls(lowered: LoweredGraph, last: int, tile: tuple[int, ...], starts: tuple[tuple[int, ...], ...], cache: bool,
           ) -> _Pull:
    return _Pull(lowered, last, tile, starts, cache)


class _Pull:
    """The steps of the tiles at `starts` of statement `last`'s output, pulled back one statement at a time: from
    the sink's box back through the statements, each computing what the statements after it in the tile read of it
    (less what earlier tiles computed, when `cache` tracks a cached group's tiles). What a statement computes
    depends only on the statements after it, so the groups ending at `last` share one pull: the group first..last
    takes its steps from `first` on, and a longer group only pulls further back."""

    def __init__(self, lowered: LoweredGraph, last: int, tile: tuple[int, ...], starts: tuple[tuple[int, ...], ...],
                 cache: bool) -> None:
        self.statements, self.last, self.cache = lowered.statements, last, cache
        self.sink = sink_tensor(lowered.statements[last])
        shape = lowered.graph.tensors[self.sink].shape
        self.demand = [{self.sink: Box(start, tuple(min(s + t, e) for s, t, e in zip(start, tile, shape,
                                                                                     strict=True)))}
                       for start in starts]  # per tile, per tensor: the box the statements pulled so far read
        self.layers: dict[int, list[Step | None]] = {}  # per statement, its step in each tile
        self.failed: int | None = None  # the statement a cached tile's rows stopped extending the last tiles' at

    def steps(self, first: int) -> list[list[Step]]:
        """Per tile, the steps of statements first..last, in program order."""
        index = min(self.layers, default=self.last + 1)
        while index > first and self.failed is None:
            index -= 1
            try:
                self.layers[index] = self._layer(index)
            except NotCacheable:
                self.failed = index
        if self.failed is not None and self.failed >= first:
            raise NotCacheable
        layers = [self.layers[index] for index in range(first, self.last + 1)]
        return [[step for layer in layers if (step := layer[position]) is not None]
                for position in range(len(self.demand))]

    def _layer(self, index: int) -> list[Step | None]:
        stmt = self.statements[index]
        out = sink_tensor(stmt)
        done: Box | None = None  # the box of its output the tiles so far computed (a cached group's)
        found: list[Step | None] = []
        for demand in self.demand:
            want = demand.get(out)
            if want is not None and self.cache and out != self.sink:
                before = done
                want = remaining(want, before)
                if want is not None:
                    done = want if before is None else hull(before, want)
            block = None if want is None else block_writing(stmt, out, want)
            if want is None or block is None:
                found.append(None)
                continue
            reads, writes = tile_boxes(stmt, block)
            for tensor, box in reads.items():
                demand[tensor] = hull(demand[tensor], box) if tensor in demand else box
            found.append(Step(index, block, reads, out, writes[out]))
        return found


@functools.lru_cache(maxsize=1024)
def internal_tensors(lowered: LoweredGraph, group: Group) -> frozenset[str]:
    """Tensors written by the group's statements other than the sink: they never leave the chip."""
    sink = sink_tensor(lowered.statements[group.last])
    return frozenset(sink_tensor(stmt) for stmt in lowered.statements[group.first:group.last]) - {sink}


def hull(first: Box, second: Box) -> Box:
    return Box(tuple(map(min, first.start, second.start)), tuple(map(max, first.stop, second.stop)))


def remaining(want: Box, done: Box | None) -> Box | None:
    """The part of `want` not yet in `done`, when that is a box that extends `done` along one axis."""
    if done is None:
        return want
    if all(a >= c and b <= d for a, b, c, d in zip(want.start, want.stop, done.start, done.stop, strict=True)):
        return None
    differ = [axis for axis in range(len(want.start))
              if (want.start[axis], want.stop[axis]) != (done.start[axis], done.stop[axis])]
    if len(differ) != 1:
        raise NotCacheable
    axis = differ[0]
    if want.start[axis] < done.start[axis] or want.start[axis] > done.stop[axis]:
        raise NotCacheable
    return Box((*want.start[:axis], done.stop[axis], *want.start[axis + 1:]), want.stop)


def recompute_ratio(lowered: LoweredGraph, group: Group) -> float:
    """Work the group's tiles do over the work of its statements (1.0 when nothing is computed twice), estimated
    from the sampled tiles."""
    return _recompute_ratio(lowered, Group(group.first, group.last, group.tile, group.cache))


@functools.lru_cache(maxsize=4096)  # the slots and lines change when a tile's work is done, not how much
def _recompute_ratio(lowered: LoweredGraph, group: Group) -> float:
    statements = lowered.statements
    work = {i: statements[i].macs + statements[i].elem_ops + 1 for i in range(group.first, group.last + 1)}
    sampled, count = sample_tiles(lowered, group)
    done = sum(work[step.index] * block_size(statements[step.index], step.block)
               / max(1, block_size(statements[step.index], {})) for steps in sampled for step in steps)
    return done * count / len(sampled) / sum(work.values())


def output_boxes(steps: Sequence[Step]) -> dict[str, Box]:
    """Per tensor the steps of one tile write, the box they write together (pieces of a Concat write parts)."""
    found: dict[str, Box] = {}
    for step in steps:
        found[step.output] = hull(found[step.output], step.box) if step.output in found else step.box
    return found


@functools.lru_cache(maxsize=1024)
def constant_boxes(lowered: LoweredGraph, group: Group) -> dict[str, Box]:
    """The boxes the group loads once and holds for every tile. Unless the group is `streamed`, that is every
    constant it reads, whole. A streamed group (weights streamed in output-channel blocks: a tile cuts the sink's
    channels) holds instead what every tile reads the same box of, constant or not (the input activation a channel
    tile reads whole), and loads the rest per tile with its other inputs (each tile's block of the weights).
    """
    graph = lowered.graph
    found: dict[str, Box] = {}
    if group.streamed:
        internal = internal_tensors(lowered, group)
        per_tile = [_input_boxes(steps, internal) for steps in tiles(lowered, group)]
        return {t: box for t, box in per_tile[0].items() if all(boxes.get(t) == box for boxes in per_tile[1:])}
    for stmt in lowered.statements[group.first:group.last + 1]:
        reads, _ = tile_boxes(stmt, {})
        for tensor, box in reads.items():
            if graph.tensors[tensor].kind == "constant":
                found[tensor] = hull(found[tensor], box) if tensor in found else box
    return found


@functools.lru_cache(maxsize=1024)
def carried_inputs(lowered: LoweredGraph, group: Group) -> tuple[frozenset[str], ...]:
    """Per tile, the inputs from outside the group (its held constants aside) whose box the next tile reads again:
    staging keeps that buffer for the next tile instead of loading the same box twice. Tiles run row-major over the
    sink's axes, so a tile cutting a conv's output channels and rows reads one block of the weights for every row
    of that channel block; a query-row tile of attention reads the same keys and values as the tile before."""
    internal = internal_tensors(lowered, group)
    held = constant_boxes(lowered, group)
    boxes = [{t: box for t, box in _input_boxes(steps, internal).items() if t not in held}
             for steps in tiles(lowered, group)]
    return (*(frozenset(t for t, box in here.items() if after.get(t) == box)
              for here, after in itertools.pairwise(boxes)), frozenset())


def _input_boxes(steps: Sequence[Step], internal: frozenset[str]) -> dict[str, Box]:
    """Per tensor one tile reads from outside the group, the box it reads over all its steps."""
    found: dict[str, Box] = {}
    for step in steps:
        for tensor, box in step.reads.items():
            if tensor not in internal:
                found[tensor] = hull(found[tensor], box) if tensor in found else box
    return found
