"""The Schedule IR: what the search chooses and staging lowers, as frozen values.

A Schedule says, for the whole graph, which runs of statements execute as fusion groups (and how each is tiled),
how every statement outside a group is tiled, and which tensors stay whole in the scratchpad between them. The search
(planner.schedule.search) makes one, the cost model (planner.schedule.cost) prices it, and staging (planner.fused
._stage, planner.staging.group, planner.staging.op) lowers it to a Program without choosing anything again.

>>> tiling = OpTiling((("n", 1), ("k", 8)), ("n", "k"))
>>> dict(tiling.tile)["k"]
8
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.groups import Group, sink_tensor
from planner.stmt import LoweredGraph

OVERLAP_MODES = ("recompute", "line-buffer", "cache")
WEIGHT_POLICIES = ("resident", "streamed")


@dataclass(frozen=True, slots=True)
class OpTiling:
    """The tiles of one statement staged alone: sizes per output dim, and the loop order (outermost first). With
    `split` the whole-reduction tile does not fit and the reduction is split (planner.staging.split picks the slices
    from the room); `tile` and `order` are then empty. The `epilogue` statements after it (planner.schedule.epilogue)
    run in place on each finished output tile, and the last one's output is stored instead."""

    tile: tuple[tuple[str, int], ...]
    order: tuple[str, ...]
    split: bool = False
    slots: int = 2  # buffer slots per operand that changes between tiles: 2 double-buffers, 1 when that does not fit
    epilogue: int = 0  # how many statements after this one run as its epilogue

    def __post_init__(self) -> None:
        if self.split and (self.tile or self.order):
            raise ValueError("a split reduction's tiling names no tile")


@dataclass(frozen=True, slots=True)
class GroupSchedule:
    """Statements first..last (inclusive) run tile by tile together, tiled on the sink's output.

    `tile` is the sink's tile shape (one extent per axis), `tiled_axes` the axes it cuts, `loop_order` the order the
    tiles run (outermost axis first), `overlap` how the halo two tiles share is handled, `weights` where the
    constants live (resident: loaded once, held for every tile; streamed: each tile loads its block of them, and
    what every tile reads alike is held, planner.groups.constant_boxes), `slots` the tiles in flight (2: the next tile's
    loads run ahead; 1: one tile at a time)."""

    first: int
    last: int
    sink: str
    tile: tuple[int, ...]
    tiled_axes: tuple[int, ...]
    loop_order: tuple[int, ...]
    overlap: str
    weights: str = "resident"
    slots: int = 2  # tiles in flight (planner.groups.Group.slots)

    def __post_init__(self) -> None:
        if not 0 <= self.first <= self.last:
            raise ValueError(f"group {self.first}..{self.last}: not a statement range")
        if self.overlap not in OVERLAP_MODES or self.weights not in WEIGHT_POLICIES:
            raise ValueError(f"group {self.first}..{self.last}: overlap {self.overlap!r} / weights {self.weights!r}")

    @property
    def group(self) -> Group:
        """The group as planner.groups tiles it."""
        return Group(self.first, self.last, self.tile, self.overlap != "recompute", self.slots,
                     self.overlap == "line-buffer", self.weights == "streamed")


@dataclass(frozen=True, slots=True)
class Kept:
    """A tensor kept whole in the scratchpad over statements first..last, at `offset` bytes per partition, taking
    `size_bytes` per partition."""

    tensor: str
    first: int
    last: int
    offset: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Residency:
    """The tensors kept whole, and per statement the room (bytes per partition) below them, left for its tiles."""

    kept: tuple[Kept, ...]
    room: tuple[int, ...]

    @property
    def tensors(self) -> frozenset[str]:
        return frozenset(k.tensor for k in self.kept)


@dataclass(frozen=True, slots=True)
class Schedule:
    """The whole-graph choice: groups in program order, the tiling of every statement outside them (by index),
    and the residency."""

    groups: tuple[GroupSchedule, ...]
    ops: tuple[tuple[int, OpTiling], ...]
    residency: Residency

    def __post_init__(self) -> None:
        covered = [i for g in self.groups for i in range(g.first, g.last + 1)] + \
            [i for first, tiling in self.ops for i in range(first, first + 1 + tiling.epilogue)]
        if sorted(covered) != list(range(len(self.residency.room))):
            raise ValueError("a schedule must place every statement exactly once")

    def units(self) -> tuple[GroupSchedule | int, ...]:
        """Groups and lone statements (by index; one with an epilogue stands for it too), in program order."""
        starting = {g.first: g for g in self.groups}
        epilogues = {index: tiling.epilogue for index, tiling in self.ops}
        found: list[GroupSchedule | int] = []
        index = 0
        while index < len(self.residency.room):
            if index in starting:
                found.append(starting[index])
                index = starting[index].last + 1
            else:
                found.append(index)
                index += 1 + epilogues[index]
        return tuple(found)


def group_schedule(lowered: LoweredGraph, group: Group) -> GroupSchedule:
    """The IR form of a planner.groups Group: tiles run row-major over the sink's axes."""
    sink = sink_tensor(lowered.statements[group.last])
    shape = lowered.graph.tensors[sink].shape
    tiled = tuple(axis for axis, (size, extent) in enumerate(zip(group.tile, shape, strict=True)) if size < extent)
    return GroupSchedule(group.first, group.last, sink, group.tile, tiled, tuple(range(len(shape))),
                         "line-buffer" if group.lines else "cache" if group.cache else "recompute",
                         "streamed" if group.streamed else "resident", group.slots)
