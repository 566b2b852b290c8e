"""The room a fusion group's staging takes: the allocator's high-water mark over the group staged alone.

`planner.working_set.working_set` estimates a group's peak from its sampled tiles, as a sum of the buffers one tile and
the next one's inputs hold. Staging interleaves two tiles (planner.staging.group.emission_order) and places every
buffer first fit (planner.staging.alloc), so the room it takes can be more than that sum: both tiles' intermediates
live at once, and the holes the first-fit sweep leaves. The search reserves this room (or, as a second candidate,
the working set alone) and checks it with the tensors the residency keeps beside the group pinned where it placed
them: first fit puts buffers in the gaps around them, and the group fits when its highest buffer ends within the
partition.

A group's buffers are all released before the next unit's start, and a tensor kept from before the group is live
from its start, so first fit places the group's buffers in the whole program exactly where it places them here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from planner.errors import PlanError
from planner.groups import Group
from planner.schedule.ir import Kept
from planner.staging.alloc import align, allocate
from planner.staging.builder import ProgramBuilder
from planner.staging.group import stage_group
from planner.staging.lines import stage_lines
from planner.staging.op import Resident
from planner.stmt import LoweredGraph
from simulator.machine import MachineConfig

UNBOUNDED = 1 << 40  # bytes per partition: room enough that the allocator never refuses


def staged_room(lowered: LoweredGraph, machine: MachineConfig, group: Group, kept: Sequence[Kept] = ()) -> int:
    """Bytes per partition (from offset 0) that staging `group` alone takes with the tensors in `kept` resident
    (pinned where the residency placed them, read and written in place): the highest end of any other buffer as
    the allocator places it (UNBOUNDED where first fit puts a buffer where a kept tensor is pinned).

    >>> # staged_room(lowered, machine, Group(0, 2, (1, 8, 4, 56), False))
    """
    sp = machine.scratchpad
    builder = ProgramBuilder(lowered, machine, "room")
    graph = lowered.graph
    residents = {k.tensor: Resident(builder.buffer(f"resident.{k.tensor}", graph.tensors[k.tensor].shape,
                                                   graph.elem_bytes(k.tensor), pinned=k.offset)) for k in kept}
    (stage_lines if group.lines else stage_group)(builder, lowered, group, residents)
    # a tensor kept from before the group is live from its start, as in the whole program
    before = {residents[k.tensor].buffer for k in kept if k.first < group.first}
    lifetimes = [dataclasses.replace(b, first=0) if b.name in before else b for b in builder.lifetimes()]
    try:
        offsets = allocate(lifetimes, UNBOUNDED, sp.alignment_bytes, "room")  # the allocator's own placement
    except PlanError:  # a buffer lies where a kept tensor is pinned: the group does not fit beside them
        return UNBOUNDED
    return max((offsets[b.name] + align(b.partition_bytes, sp.alignment_bytes) for b in lifetimes
                if b.pinned is None), default=0)
