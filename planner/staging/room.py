"""The room a fusion group's staging takes: the allocator's high-water mark over the group staged alone.

`planner.working_set.working_set` estimates a group's peak from its sampled tiles, as a sum of the buffers one tile and
the next one's inputs hold. Staging interleaves two tiles (planner.staging.group.emission_order) and places every
buffer first fit (planner.staging.alloc), so the room it takes can be more than that sum: both tiles' intermediates
live at once, and the holes the first-fit sweep leaves. The search reserves this room instead, so the residency it
chooses leaves each group what its staging will ask for.

A group's buffers are all released before the next unit's start and the resident tensors are pinned above the room
the residency leaves, so first fit places the group's buffers in the whole program exactly where it places them
here, when the room is at least this high-water mark.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    the allocator places it.

    >>> # staged_room(lowered, machine, Group(0, 2, (1, 8, 4, 56), False))
    """
    sp = machine.scratchpad
    builder = ProgramBuilder(lowered, machine, "room")
    graph = lowered.graph
    residents = {k.tensor: Resident(builder.buffer(f"resident.{k.tensor}", graph.tensors[k.tensor].shape,
                                                   graph.elem_bytes(k.tensor), pinned=k.offset)) for k in kept}
    (stage_lines if group.lines else stage_group)(builder, lowered, group, residents)
    lifetimes = builder.lifetimes()
    offsets = allocate(lifetimes, UNBOUNDED, sp.alignment_bytes, "room")  # the allocator's own placement
    return max((offsets[b.name] + align(b.partition_bytes, sp.alignment_bytes) for b in lifetimes
                if b.pinned is None), default=0)
