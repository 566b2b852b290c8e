"""The tiling of one statement staged alone: the tile the room allows, and the loop order that loads least.

This is the choice per-operator staging makes (the baseline's): planner.staging.op_tilings.choose_tiling and
planner.staging.split.split_slices, asked here before staging so that the cost model prices exactly what staging then
emits. Only the choice functions are shared, never a copy of them.
"""

from __future__ import annotations

from collections.abc import Callable

from planner.staging.alloc import buffer_bytes
from planner.staging.builder import ProgramBuilder
from planner.staging.split import split_dim, split_slices
from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block, extents, tile_boxes
from simulator.isa import Box
from simulator.machine import MachineConfig

Tiles = list[tuple[Block, dict[str, Box], dict[str, Box]]]


def partition_bytes_of(lowered: LoweredGraph, machine: MachineConfig) -> Callable[[str, tuple[int, ...]], int]:
    """Aligned bytes per partition a buffer of `shape` elements of `tensor` takes."""
    graph, sp = lowered.graph, machine.scratchpad
    return lambda tensor, shape: buffer_bytes(shape, graph.elem_bytes(tensor), sp)


def constant_inputs(stmt: Statement, tiles: Tiles) -> frozenset[str]:
    """Inputs every tile reads whole: one buffer slot, loaded once."""
    whole_reads, _ = tile_boxes(stmt, {})
    return frozenset(t for t in whole_reads if all(reads.get(t) == whole_reads[t] for _, reads, _ in tiles))


def split_tiles(lowered: LoweredGraph, machine: MachineConfig, stmt: Statement, capacity: int,
                ) -> list[tuple[Block, dict[str, Box], dict[str, Box], bool]]:
    """The slices planner.staging.split emits for `stmt` in `capacity`: (its output block with the slice of the
    reduction, reads, writes, last slice of its output tile) each; raises PlanError as staging would."""
    builder = _builder(lowered, machine)
    reduction = split_dim(builder, stmt)
    assert reduction is not None
    hi = extents(stmt)[reduction][1]
    return [({**block, reduction: step}, reads, writes, step[1] == hi)
            for block, step, reads, writes in split_slices(builder, stmt, capacity, reduction)]


_BUILDERS: dict[tuple[int, int], tuple[LoweredGraph, MachineConfig, ProgramBuilder]] = {}


def _builder(lowered: LoweredGraph, machine: MachineConfig) -> ProgramBuilder:
    # Only asked for sizes, nodes and the machine: the choice functions build no instruction with it. Kept by
    # identity (a MachineConfig holds dicts, so it does not hash); the entry keeps both alive, so ids are not reused.
    key = (id(lowered), id(machine))
    entry = _BUILDERS.get(key)
    if entry is None or entry[0] is not lowered or entry[1] is not machine:
        if len(_BUILDERS) >= 8:
            _BUILDERS.pop(next(iter(_BUILDERS)))
        entry = _BUILDERS[key] = (lowered, machine, ProgramBuilder(lowered, machine, "cost"))
    return entry[2]
