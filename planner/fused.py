"""The fused strategy: the whole graph planned at once, keeping intermediates on chip where that pays.

    choose_residency  -> which intermediates stay whole in the scratchpad, for the whole graph (planner.schedule)
    stage_statement   -> every op tiled in the room the resident tensors leave; resident operands read in place
    build             -> addresses from lifetimes; if fragmentation defeats the allocator, keep fewer and retry
    keep the best     -> two policies for the room ops keep, and the baseline's own plan: the one moving the fewest
                         bytes (counted from the programs' loads and stores) wins

Operators are not yet fused into one loop nest (conv -> conv with halos); a producer's output stays on chip for its
consumers instead, which removes the same DRAM round trip wherever the intermediate fits.
"""

from __future__ import annotations

import dataclasses

from planner.alloc import buffer_bytes
from planner.baseline import plan_baseline
from planner.errors import PlanError
from planner.progress import progress
from planner.schedule import Residency, choose_residency, working_sets
from planner.stage_op import Resident, stage_statement, tile_cost
from planner.staging import ProgramBuilder
from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block
from simulator.isa import DmaLoad, DmaStore, Program
from simulator.machine import MachineConfig

RETRIES = 8


def plan_fused(lowered: LoweredGraph, machine: MachineConfig) -> Program:
    """Plan with residency across ops; never moves more DRAM bytes than the baseline's plan."""
    sp = machine.scratchpad
    graph = lowered.graph

    def partition_bytes(tensor: str, shape: tuple[int, ...]) -> int:
        return buffer_bytes(shape, graph.elem_bytes(tensor), sp)

    def cost(stmt: Statement, block: Block) -> int:
        return tile_cost(stmt, block, partition_bytes)

    baseline = plan_baseline(lowered, machine)
    candidates = [dataclasses.replace(baseline, strategy="fused")]
    tried: set[tuple[tuple[str, int], ...]] = set()
    for reserve in working_sets(lowered, sp.partition_bytes, cost).values():
        excluded: frozenset[str] = frozenset()
        for _ in range(RETRIES):
            residency = choose_residency(lowered, sp.partition_bytes, sp.alignment_bytes,
                                         lambda t: partition_bytes(t, graph.tensors[t].shape), reserve, excluded)
            chosen = tuple(sorted(residency.offsets.items()))
            if not residency.lifetimes or (chosen in tried and not excluded):
                break  # nothing kept, or the same choice another policy already staged
            tried.add(chosen)
            try:
                candidates.append(_stage(lowered, machine, residency))
                break
            except PlanError:  # a tile the residency left no room for: give up the largest tensor, choose again
                excluded |= {max(residency.lifetimes, key=lambda t: (residency.sizes[t], t))}
    # The cost model is the bytes each program moves, read off its instructions; ties go to the later (fused) plan.
    return min(reversed(candidates), key=dram_bytes)


def dram_bytes(program: Program) -> int:
    """Bytes a program moves between DRAM and the scratchpad, read off its loads and stores."""
    sizes = {tensor.name: tensor.elem_bytes for tensor in program.tensors}
    return sum(i.box.numel * sizes[i.tensor] for i in program.instructions if isinstance(i, (DmaLoad, DmaStore)))


def _stage(lowered: LoweredGraph, machine: MachineConfig, residency: Residency) -> Program:
    builder = ProgramBuilder(lowered, machine, "fused")
    graph = lowered.graph
    residents = {t: Resident(builder.buffer(f"resident.{t}", graph.tensors[t].shape, graph.elem_bytes(t),
                                            pinned=residency.offsets[t]))
                 for t in residency.lifetimes}
    for index, stmt in enumerate(progress(lowered.statements, "fused")):
        touched = {access.tensor for access in (*stmt.reads, *stmt.writes)}
        stage_statement(builder, stmt, {t: residents[t] for t in touched if t in residents}, residency.room[index])
        for tensor, (_, last) in residency.lifetimes.items():
            if last == index:
                keep = residents[tensor]
                builder.release(keep.buffer, sorted({*keep.readers, *(w for _, w in keep.writes)}))
    return builder.build()
