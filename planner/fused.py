"""The fused strategy: the whole graph planned at once, keeping intermediates on chip where that pays.

    search  -> candidate Schedules (planner.schedule.search): the baseline's own, residency policies, fusion
               groups; priced by the cost model (planner.schedule.cost), never by staging them
    stage   -> the best Schedule under the objective, lowered to one Program: groups by planner.staging.group, ops
               alone by planner.staging.op with the tiling the schedule names, resident tensors pinned where the
               residency placed them
    build   -> addresses from lifetimes; should fragmentation defeat the allocator, the next schedule is staged
"""

from __future__ import annotations

from planner.baseline import plan_baseline
from planner.errors import PlanError
from planner.progress import progress
from planner.schedule.ir import GroupSchedule, Schedule
from planner.schedule.search import search
from planner.staging.builder import ProgramBuilder
from planner.staging.group import stage_group
from planner.staging.lines import stage_lines
from planner.staging.op import Resident, stage_statement
from planner.stmt import LoweredGraph
from simulator.isa import DmaGather, DmaLoad, DmaStore, Program
from simulator.machine import MachineConfig


def plan_fused(lowered: LoweredGraph, machine: MachineConfig, objective: str = "traffic") -> Program:
    """Plan the searched whole-graph schedule; under `traffic` it never moves more DRAM bytes than the baseline."""
    return choose_fused(lowered, machine, objective)[0]


def choose_fused(lowered: LoweredGraph, machine: MachineConfig,
                 objective: str = "traffic") -> tuple[Program, Schedule | None]:
    """The fused program and the schedule it was staged from (None when the search found none and the per-op
    baseline planned it instead)."""
    ranked = search(lowered, machine, objective)
    if not ranked:
        return plan_baseline(lowered, machine), None  # raises the PlanError naming the op no tile of fits
    failure: PlanError | None = None
    for schedule, _ in ranked:
        try:
            return stage(lowered, machine, schedule), schedule
        except PlanError as error:  # the allocator could not place the buffers: stage the next best
            failure = failure or error
    assert failure is not None
    raise failure


def dram_bytes(program: Program) -> int:
    """Bytes a program moves between DRAM and the scratchpad, read off its loads and stores."""
    sizes = {tensor.name: tensor.elem_bytes for tensor in program.tensors}
    return sum(i.box.numel * sizes[i.tensor] for i in program.instructions if isinstance(i, (DmaLoad, DmaStore))) + \
        sum(i.output.box.numel * sizes[i.table] for i in program.instructions if isinstance(i, DmaGather))


def stage(lowered: LoweredGraph, machine: MachineConfig, schedule: Schedule) -> Program:
    """Lower a Schedule to a Program, choosing nothing again."""
    builder = ProgramBuilder(lowered, machine, "fused")
    graph = lowered.graph
    residents = {k.tensor: Resident(builder.buffer(f"resident.{k.tensor}", graph.tensors[k.tensor].shape,
                                                   graph.elem_bytes(k.tensor), pinned=k.offset))
                 for k in schedule.residency.kept}
    tilings = dict(schedule.ops)
    for unit in progress(schedule.units(), "fused"):
        if isinstance(unit, GroupSchedule):
            (stage_lines if unit.group.lines else stage_group)(builder, lowered, unit.group, residents)
            done = range(unit.first, unit.last + 1)
        else:
            stmt = lowered.statements[unit]
            touched = {access.tensor for access in (*stmt.reads, *stmt.writes)}
            done = range(unit, unit + 1 + tilings[unit].epilogue)
            stage_statement(builder, stmt, {t: residents[t] for t in touched if t in residents},
                            schedule.residency.room[unit], tilings[unit], lowered.statements[done.start + 1:done.stop])
        for kept in schedule.residency.kept:
            if kept.last in done:
                keep = residents[kept.tensor]
                builder.release(keep.buffer, sorted({*keep.readers, *(w for _, w in keep.writes)}))
    return builder.build()
