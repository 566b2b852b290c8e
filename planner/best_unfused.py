"""The best unfused plan's traffic: for each op alone, the fewest DRAM bytes over every tiling and loop order that fits
the scratchpad with the buffers staging allocates for it (the per-layer optimum a mapper like ZigZag searches, over the
tilings planner.staging can emit), with each intermediate written once and read once by each consumer. A fused plan is
at or below it (per-op staging takes the fewest bytes of its candidates, and fusion only saves); an unfused one (the
baseline) is at or above it.

The space searched is planner.tiling_prices': whole-reduction tilings with one buffer per tensor (a double-buffered
tiling moves the same bytes as the single-slot one of its tile, in twice the room), and split reductions for the ops
planner.staging.split splits. An op's bound depends on its structure, its element sizes and the scratchpad only, so
it is kept across models (the layers a pruned variant shares with its original, or a sweep's repeated points, are not
searched again).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from planner import poly
from planner.stmt import LoweredGraph, Statement
from planner.tiling import extents, output_dims
from planner.tiling_prices import op_choices, priced_tilings
from simulator.machine import MachineConfig

# The reduction dims a tile may split, per op: partial sums over a slice of them are themselves that op on the slice.
REDUCTION_SPLITS = {"Conv": ("c",), "MatMul": ("k",), "Gemm": ("k",)}


@dataclass(frozen=True, slots=True)
class OpBound:
    """The cheapest tiling of one statement: its DRAM bytes, tile sizes and loop order (outermost first)."""

    node: str
    statement: str
    dram_bytes: int
    tile: tuple[tuple[str, int], ...]
    order: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BestUnfused:
    ops: tuple[OpBound, ...]

    @property
    def dram_bytes(self) -> int:
        return sum(op.dram_bytes for op in self.ops)


def best_unfused(lowered: LoweredGraph, machine: MachineConfig) -> BestUnfused:
    """Per statement, the fewest DRAM bytes of any tiling that fits; see the module docstring for the space.

    >>> # best_unfused(lower(load_graph(models.build("cnn", small=True))), load_machine("edge-npu")).dram_bytes
    """
    ops = []
    for stmt in lowered.statements:
        # an op's bound is a function of its structure (names left out), its tensors' element sizes and the
        # scratchpad alone: repeated layers, and the layers a pruned variant shares with its original, are priced once
        key = (poly.structure_key(stmt), tuple(lowered.graph.elem_bytes(t) for t in
                                               (*stmt.tensors_read, *(a.tensor for a in stmt.writes))),
               machine.scratchpad)
        if key not in _FOUND:
            if len(_FOUND) >= _FOUND_KEPT:
                _FOUND.pop(next(iter(_FOUND)))
            _FOUND[key] = op_bound(lowered, stmt, machine)
        ops.append(dataclasses.replace(_FOUND[key], node=stmt.node, statement=stmt.name))
    return BestUnfused(tuple(ops))


_FOUND: dict[tuple[object, ...], OpBound] = {}
_FOUND_KEPT = 4096


def tileable_dims(stmt: Statement) -> tuple[str, ...]:
    """Output dims, then the reduction dims the op may split, that span more than one point."""
    spans = extents(stmt)
    reductions = tuple(d for d in REDUCTION_SPLITS.get(stmt.op_type, ()) if d in stmt.dims
                       and d not in output_dims(stmt))
    return tuple(d for d in (*output_dims(stmt), *reductions) if spans[d][1] - spans[d][0] > 1)


def split_reduction(lowered: LoweredGraph, stmt: Statement) -> str | None:
    """The reduction dim planner.staging.split splits for this op (its `split_dim`), or None: Conv with one group on
    its input channels, MatMul and Gemm on k."""
    if stmt.op_type == "Conv":
        node = next(n for n in lowered.graph.nodes if n.name == stmt.node)
        return "c" if int(node.attrs.get("group", 1)) == 1 else None
    return "k" if stmt.op_type in ("MatMul", "Gemm") else None


def op_bound(lowered: LoweredGraph, stmt: Statement, machine: MachineConfig) -> OpBound:
    """The cheapest tiling of one statement that fits (see the module docstring for the space); a statement no
    tiling fits is priced at its smallest tile with one buffer per tensor (the bound then says what a plan would move
    if it could stage the op at all)."""
    capacity = machine.scratchpad.partition_bytes
    reduction = split_reduction(lowered, stmt)
    found = [*op_choices(lowered, stmt, machine, capacity, 1)[:1],
             *(op_choices(lowered, stmt, machine, capacity, split=reduction)[:1] if reduction else ())]
    if found:
        total, tile, order = min(found, key=lambda choice: choice[0])
        return OpBound(stmt.node, stmt.name, total, tile, order)
    _, smallest = priced_tilings(lowered, stmt, machine, tileable_dims(stmt), 0, 1)
    return OpBound(stmt.node, stmt.name, smallest[0], tuple(smallest[1].items()), smallest[2])

