"""The per-operator baseline: every op on its own, tiled to fit, through DRAM.

For each statement it picks the largest output tile whose buffers fit (inputs and output double-buffered, a tensor
whose box never changes across tiles loaded once), loads each tile's inputs from DRAM, computes, and stores the
output back. Loads for tile i+1 are issued before the compute of tile i, so DMA overlaps compute within the op;
nothing is kept from one op to the next. This is what an honest per-operator compiler does.
"""

from __future__ import annotations

from planner.progress import progress
from planner.staging.builder import ProgramBuilder
from planner.staging.op import stage_statement
from planner.stmt import LoweredGraph
from simulator.isa import Program
from simulator.machine import MachineConfig


def plan_baseline(lowered: LoweredGraph, machine: MachineConfig) -> Program:
    """Stage every statement on its own; raises PlanError naming the op when no tile of it fits."""
    builder = ProgramBuilder(lowered, machine, "baseline")
    for stmt in progress(lowered.statements, "baseline"):
        stage_statement(builder, stmt)
    return builder.build()
