"""The fused strategy: the whole graph planned at once, keeping intermediates on chip where that pays.

    choose_groups     -> fusion groups: runs of ops tiled together along batch or rows, a tile of the last op
                         pulling its producers' halo'd tiles, so their intermediates never leave the chip
                         (planner.group_choice; tiles in planner.groups, staged by planner.stage_group)
    choose_residency  -> which tensors between groups and ops stay whole in the scratchpad, for the whole graph
                         (planner.schedule)
    stage_statement   -> every op outside a group tiled in the room the resident tensors leave; resident operands
                         read in place
    build             -> addresses from lifetimes; if fragmentation defeats the allocator, keep fewer and retry
    keep the best     -> three policies for the room ops keep without groups, one with groups, and the baseline's
                         own plan: the one moving the fewest bytes (counted from the programs' loads and stores)
                         wins
"""

from __future__ import annotations

import dataclasses

from planner.alloc import buffer_bytes
from planner.baseline import plan_baseline
from planner.errors import PlanError
from planner.group_choice import choose_groups
from planner.groups import Group, internal_tensors, working_set
from planner.progress import progress
from planner.schedule import Residency, choose_residency, working_sets
from planner.stage_group import stage_group
from planner.stage_op import Resident, stage_statement, tile_cost
from planner.staging import ProgramBuilder
from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block
from simulator.isa import DmaGather, DmaLoad, DmaStore, Program
from simulator.machine import MachineConfig

RETRIES = 8
GROUP_SHARES = (0.5, 0.75)  # the share of the scratchpad a fusion group's tiles may take; residency has the rest


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
    tried: set[tuple[tuple[tuple[str, int], ...], tuple[Group, ...]]] = set()
    policies = working_sets(lowered, sp.partition_bytes, cost)
    plans: list[tuple[list[int], tuple[Group, ...]]] = [(reserve, ()) for reserve in policies.values()]
    for share in GROUP_SHARES:
        groups = tuple(choose_groups(lowered, int(sp.partition_bytes * share), partition_bytes))
        if groups:
            reserve = list(policies["baseline-tiles"])
            for group in groups:
                need = working_set(lowered, group, partition_bytes)
                reserve[group.first:group.last + 1] = [need] * (group.last - group.first + 1)
            plans.append((reserve, groups))
    for reserve, groups in plans:
        excluded = frozenset(t for group in groups for t in internal_tensors(lowered, group))
        units = [(index, index) for index in range(len(lowered.statements))]
        for group in groups:
            units[group.first:group.last + 1] = [(group.first, group.last)] * (group.last - group.first + 1)
        for _ in range(RETRIES):
            residency = choose_residency(lowered, sp.partition_bytes, sp.alignment_bytes,
                                         lambda t: partition_bytes(t, graph.tensors[t].shape), reserve, excluded,
                                         units)
            chosen = (tuple(sorted(residency.offsets.items())), groups)
            if (not residency.lifetimes and not groups) or chosen in tried:
                break  # nothing kept, or the same choice another policy already staged
            tried.add(chosen)
            try:
                candidates.append(_stage(lowered, machine, residency, groups))
                break
            except PlanError:  # a tile the residency left no room for: give up the largest tensor, choose again
                if not residency.lifetimes:
                    break
                excluded |= {max(residency.lifetimes, key=lambda t: (residency.sizes[t], t))}
    # The cost model is the bytes each program moves, read off its instructions; ties go to the later (fused) plan.
    return min(reversed(candidates), key=dram_bytes)


def dram_bytes(program: Program) -> int:
    """Bytes a program moves between DRAM and the scratchpad, read off its loads and stores."""
    sizes = {tensor.name: tensor.elem_bytes for tensor in program.tensors}
    return sum(i.box.numel * sizes[i.tensor] for i in program.instructions if isinstance(i, (DmaLoad, DmaStore))) + \
        sum(i.output.box.numel * sizes[i.table] for i in program.instructions if isinstance(i, DmaGather))


def _stage(lowered: LoweredGraph, machine: MachineConfig, residency: Residency, groups: tuple[Group, ...]) -> Program:
    builder = ProgramBuilder(lowered, machine, "fused")
    graph = lowered.graph
    residents = {t: Resident(builder.buffer(f"resident.{t}", graph.tensors[t].shape, graph.elem_bytes(t),
                                            pinned=residency.offsets[t]))
                 for t in residency.lifetimes}
    starting = {group.first: group for group in groups}
    units: list[Group | int] = []  # a group, or the index of a statement staged on its own
    index = 0
    while index < len(lowered.statements):
        units.append(starting.get(index, index))
        index = starting[index].last + 1 if index in starting else index + 1
    for unit in progress(units, "fused"):
        if isinstance(unit, Group):
            stage_group(builder, lowered, unit, residents)
            done = range(unit.first, unit.last + 1)
        else:
            stmt = lowered.statements[unit]
            touched = {access.tensor for access in (*stmt.reads, *stmt.writes)}
            stage_statement(builder, stmt, {t: residents[t] for t in touched if t in residents},
                            residency.room[unit])
            done = range(unit, unit + 1)
        for tensor, (_, last) in residency.lifetimes.items():
            if last in done:
                keep = residents[tensor]
                builder.release(keep.buffer, sorted({*keep.readers, *(w for _, w in keep.writes)}))
    return builder.build()
