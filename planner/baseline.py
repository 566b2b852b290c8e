"""The per-operator baseline: every op on its own, tiled to fit, through DRAM.

For each statement it picks the largest output tile whose buffers fit (inputs and output double-buffered, a tensor
whose box never changes across tiles loaded once), loads each tile's inputs from DRAM, computes, and stores the
output back. Loads for tile i+1 are issued before the compute of tile i, so DMA overlaps compute within the op;
nothing is kept from one op to the next. Where single-buffered tiles or a split reduction move fewer bytes at
most 10% slower (priced by the cost model), it takes those instead: the op alone as the fused strategy's search
tiles it (planner.schedule.op_choice). This is what an honest per-operator compiler does.
"""

from __future__ import annotations

from planner.progress import progress
from planner.schedule.op_choice import op_tiling
from planner.staging.builder import ProgramBuilder
from planner.staging.op import stage_statement
from planner.stmt import LoweredGraph
from simulator.isa import Program
from simulator.machine import MachineConfig


def plan_baseline(lowered: LoweredGraph, machine: MachineConfig) -> Program:
    """Stage every statement on its own; raises PlanError naming the op when no tile of it fits."""
    builder = ProgramBuilder(lowered, machine, "baseline")
    capacity = machine.scratchpad.partition_bytes
    for stmt in progress(lowered.statements, "baseline"):
        # None when nothing fits: staging then chooses again, and raises the refusal naming the op
        stage_statement(builder, stmt, tiling=op_tiling(lowered, machine, stmt, frozenset(), capacity))
    return builder.build()
