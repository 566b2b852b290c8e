"""The search: candidate Schedules, compared by the cost model alone; the one staged is the best under the objective.

Candidates (`candidates`):
- the baseline's own schedule: every op alone in the whole scratchpad, nothing kept; and the same with the pointwise
  ops after an op run in place on its tiles (planner.schedule.epilogue), as every other candidate has them;
- three residency policies for the room ops keep without groups (planner.schedule.residency.working_sets);
- fusion groups under two shares of the scratchpad, residency filling the rest: chosen greedily
  (planner.group_choice) and by dynamic programming (planner.schedule.cuts), the latter also over the whole
  scratchpad, and over two sets of boundaries: the cut points (one tensor live) and planner.schedule.boundaries'
  (up to two live; more places to cut, but runs capped at cuts.MAX_STATEMENTS statements span fewer of them);
- each of those group sets also bare, with nothing kept around the groups: the residency chooser keeps tensors by
  bytes saved per byte of room, which can shrink a group's neighbours' tiles by more than it saves (bert_base on
  edge-npu: 531 MB with residency around its groups, 324 MB without).

The "baseline-tiles" residency policy keeps for each op at least the room of the tiling the baseline chose for it.

A group reserves the room its staging takes as the allocator places it (planner.staging.room), and, as a second
candidate, only its working set. A residency whose op finds no tile in the room left, or whose group's buffers first
fit cannot place around the tensors it keeps, gives up its largest tensor and is chosen again. Objectives
(`rank`): `traffic` (the default) takes the fewest DRAM bytes, ties by cycles, among candidates estimated at most
1% slower than the baseline (a schedule with groups with its estimate scaled by GROUP_ESTIMATE_MARGIN); `latency`
the fewest cycles, ties by bytes; `edp` the least estimated energy x cycles.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from planner.group_choice import choose_groups, cut_points
from planner.groups import Group, internal_tensors
from planner.progress import progress
from planner.schedule.boundaries import group_boundaries
from planner.schedule.cost import Price, price
from planner.schedule.cuts import best_groups
from planner.schedule.epilogue import epilogue_length
from planner.schedule.ir import OpTiling, Residency, Schedule, group_schedule
from planner.schedule.op_choice import OpMemo, op_tiling
from planner.schedule.op_tiles import partition_bytes_of
from planner.schedule.residency import choose_residency, working_sets
from planner.staging.op_tilings import tile_cost
from planner.staging.room import staged_room
from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block, middle_block
from planner.working_set import working_set
from simulator.machine import MachineConfig

OBJECTIVES = ("traffic", "latency", "edp")
RETRIES = 8
GROUP_SHARES = (0.5, 0.75)  # the share of the scratchpad a fusion group's tiles may take; residency has the rest
DP_SHARES = (0.75, 1.0)  # the shares the dynamic programming over cut points runs at
CYCLES_SLACK = 1.01  # under `traffic`, a schedule may be at most this much slower than the baseline (estimated)
# The cycle estimate of a schedule with groups runs from 27% under to 37% over the simulated cycles on the small zoo
# (tests/planner/schedule/test_cost.py); scaling it by the under-estimate before the 1% bound (1.37, then 1.15) gave
# up groups on 16 KiB edge-npu that were in fact faster than the baseline, so the estimate is taken as it is.
GROUP_ESTIMATE_MARGIN = 1.0


def baseline_schedule(lowered: LoweredGraph, machine: MachineConfig, objective: str = "traffic",
                      memo: OpMemo | None = None) -> Schedule | None:
    """Every op alone in the whole scratchpad, as the baseline stages it (under `objective`: planner.staging.op_tilings.
    choose_tiling); None when an op fits no tile."""
    capacity = machine.scratchpad.partition_bytes
    return schedule_of(lowered, machine, (), Residency((), (capacity,) * len(lowered.statements)), objective, memo,
                       epilogues=False)


def candidates(lowered: LoweredGraph, machine: MachineConfig, objective: str = "traffic") -> list[Schedule]:
    """Every schedule the search considers, the baseline's first, its ops tiled alone as `objective` has them (one
    buffer slot where that moves fewer bytes, under `traffic`); see the module docstring."""
    sp = machine.scratchpad
    size_of = partition_bytes_of(lowered, machine)

    def cost(stmt: Statement, block: Block) -> int:
        return tile_cost(stmt, block, size_of)

    ops = OpMemo()  # each op's tiling per room and residents it touches, asked again by most candidates
    found: list[Schedule] = []
    first = baseline_schedule(lowered, machine, objective, ops)
    if first is not None:
        found.append(first)
        fused_ops = schedule_of(lowered, machine, (), first.residency, objective, ops)  # the same, with epilogues
        if fused_ops is not None and fused_ops != first:
            found.append(fused_ops)
    policies = working_sets(lowered, sp.partition_bytes, cost)
    if first is not None:
        policies["baseline-tiles"] = chosen_rooms(lowered, first, size_of, policies["baseline-tiles"])
    plans: list[tuple[list[int], tuple[Group, ...]]] = [(reserve, ()) for reserve in policies.values()]
    chosen: list[tuple[Group, ...]] = []
    for share in GROUP_SHARES:
        budget = int(sp.partition_bytes * share)
        chosen.append(tuple(choose_groups(lowered, budget, size_of)))
    # by dynamic programming at the larger share, and over the whole scratchpad (groups that leave residency no
    # room, for a graph whose groups cover it), over each set of boundaries: each run it prices costs isl queries
    # per tile
    memo: dict[tuple[object, ...], Any] = {}  # what the runs cost depends on neither the share nor the boundaries
    for share in DP_SHARES:
        for points in (cut_points(lowered), group_boundaries(lowered)):
            chosen.append(best_groups(lowered, machine, int(sp.partition_bytes * share), size_of, memo, points))
    seen: set[tuple[object, ...]] = set()
    for groups in dict.fromkeys(chosen):
        if groups:
            seen.add(((), groups))
            bare = schedule_of(lowered, machine, groups, Residency((), (sp.partition_bytes,) * len(lowered.statements)),
                               objective, ops)
            if bare is not None:
                found.append(bare)
            # Two reserves per group: the room its staging takes alone (safe: first fit places its buffers below
            # whatever the residency keeps), and the working set, which first fit may meet by placing some buffers
            # in the gaps around the kept tensors (schedule_of checks it): resnet50 at batch 8 on inferentia2-core
            # keeps every block's output between its groups only with the working set reserved.
            safe, tight = list(policies["baseline-tiles"]), list(policies["baseline-tiles"])
            for group in groups:
                need = working_set(lowered, group, size_of)
                span = slice(group.first, group.last + 1)
                safe[span] = [max(need, staged_room(lowered, machine, group))] * (group.last - group.first + 1)
                tight[span] = [need] * (group.last - group.first + 1)
            for room in dict.fromkeys((tuple(safe), tuple(tight))):
                if max(room) <= sp.partition_bytes:  # else a group's staging would not fit at all
                    plans.append((list(room), groups))
    for reserve, groups in progress(plans, "search"):
        excluded = frozenset(t for group in groups for t in internal_tensors(lowered, group))
        spans = [(index, index) for index in range(len(lowered.statements))]
        for group in groups:
            spans[group.first:group.last + 1] = [(group.first, group.last)] * (group.last - group.first + 1)
        for _ in range(RETRIES):
            residency = choose_residency(lowered, sp.partition_bytes, sp.alignment_bytes,
                                         lambda t: size_of(t, lowered.graph.tensors[t].shape), reserve, excluded,
                                         spans)
            key = (residency.kept, groups)
            if (not residency.kept and not groups) or key in seen:
                break  # nothing kept, or the same choice another policy made
            seen.add(key)
            schedule = schedule_of(lowered, machine, groups, residency, objective, ops)
            if schedule is not None:
                found.append(schedule)
                break
            if not residency.kept:
                break
            # an op the residency left no room for: give up the largest tensor, choose again
            excluded |= {max(residency.kept, key=lambda k: (k.size_bytes, k.tensor)).tensor}
    return found


def chosen_rooms(lowered: LoweredGraph, schedule: Schedule, size_of: Callable[[str, tuple[int, ...]], int],
                 rooms: Sequence[int]) -> list[int]:
    """`rooms`, each raised to what the tiling `schedule` chose for that op takes (a one-slot tiling may need more
    than the largest double-buffered tile: keeping a tensor in that room would tile the op smaller than the
    baseline does). A split reduction's room is planner.staging.split's own, found from the room it is given."""
    raised = list(rooms)
    for index, tiling in schedule.ops:
        if tiling.split:
            continue
        stmt = lowered.statements[index]
        block = middle_block(stmt, dict(tiling.tile))
        raised[index] = max(raised[index], tile_cost(stmt, block, size_of, slots=tiling.slots))
    return raised


def schedule_of(lowered: LoweredGraph, machine: MachineConfig, groups: Sequence[Group], residency: Residency,
                objective: str = "traffic", memo: OpMemo | None = None, epilogues: bool = True) -> Schedule | None:
    """The schedule of these groups and this residency, every other op tiled in the room it leaves (with the
    pointwise ops after it as its epilogue, unless `epilogues` is False: the baseline's); None when an op finds no
    tile there. `memo` (for this graph and machine) keeps the ops' tilings for the next schedule."""
    inside = {i for group in groups for i in range(group.first, group.last + 1)}
    resident = residency.tensors
    for group in groups:  # first fit places the group's buffers around the tensors kept beside it, under capacity
        kept = [k for k in residency.kept if k.first <= group.last and group.first <= k.last]
        if staged_room(lowered, machine, group, kept) > machine.scratchpad.partition_bytes:
            return None
    ops: list[tuple[int, OpTiling]] = []
    index = 0
    while index < len(lowered.statements):
        if index in inside:
            index += 1
            continue
        tiling = op_tiling(lowered, machine, lowered.statements[index], resident, residency.room[index], objective,
                           memo)
        if tiling is None:
            return None
        after = epilogue_length(lowered, index, resident) if epilogues else 0
        after = next((n for n in range(after) if index + 1 + n in inside), after)
        if after:
            tiling = dataclasses.replace(tiling, epilogue=after)
        ops.append((index, tiling))
        index += 1 + after
    return Schedule(tuple(group_schedule(lowered, g) for g in groups), tuple(ops), residency)


def energy_pj(lowered: LoweredGraph, machine: MachineConfig, cost: Price) -> float:
    """A rough energy: DRAM bytes at the machine's per-byte energy, plus every MAC and element op once."""
    energy = machine.energy
    mac = energy.mac_pj.get(lowered.graph.planning_dtype or "fp32", 0.0)
    return cost.dram_bytes * energy.dram_pj_per_byte + lowered.macs * mac + \
        sum(s.elem_ops for s in lowered.statements) * energy.vector_op_pj


def rank(lowered: LoweredGraph, machine: MachineConfig, schedules: Sequence[Schedule], objective: str = "traffic",
         ) -> list[tuple[Schedule, Price]]:
    """The schedules best first under `objective` (the first is the baseline's, which `traffic` always admits)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: unknown; choose one of {', '.join(OBJECTIVES)}")
    priced = [(schedule, price(lowered, machine, schedule)) for schedule in schedules]
    if not priced:
        return []
    if objective == "latency":
        return sorted(priced, key=lambda item: (item[1].cycles, item[1].dram_bytes))
    if objective == "edp":
        return sorted(priced, key=lambda item: (energy_pj(lowered, machine, item[1]) * item[1].cycles,
                                                item[1].dram_bytes))
    limit = priced[0][1].cycles * CYCLES_SLACK
    admitted = [item for item in priced if item is priced[0]
                or item[1].cycles * (GROUP_ESTIMATE_MARGIN if item[0].groups else 1.0) <= limit]
    rest = [item for item in priced if item not in admitted]
    return sorted(admitted, key=lambda item: (item[1].dram_bytes, item[1].cycles)) + rest


def search(lowered: LoweredGraph, machine: MachineConfig, objective: str = "traffic") -> list[tuple[Schedule, Price]]:
    """Every candidate, best first under `objective`.

    >>> # schedule, cost = search(lowered, machine)[0]
    """
    return rank(lowered, machine, candidates(lowered, machine, objective), objective)
