"""Prices a Schedule without building a Program: DRAM bytes exactly, cycles as an estimate.

The walk follows staging instruction by instruction, on boxes alone: per op alone, its tiles in the chosen loop
order with the two-slot reuse staging does (a box already in a slot is not loaded again) and the next tile's loads
ahead of this tile's compute; per group, its constants once, then every tile's inputs, steps (in staging's emission
order) and sink; per split reduction, every slice's inputs and each finished tile. Each instruction goes onto a
Timeline (planner.schedule.timeline) that counts its bytes and its finish time with the simulator's own formulas
(`simulator.systolic.tensor_cycles`, the vector rate, `simulator.timing.descriptors`). Bytes equal the simulated
program's `dram_bytes_read + dram_bytes_written`; cycles are near its `total_cycles` (tests/planner/schedule).

>>> # price(lowered, machine, schedule).dram_bytes == simulate(stage(schedule), machine).stats.dram_bytes_read + ...
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from planner.groups import (
    Group,
    carried_inputs,
    constant_boxes,
    hull,
    internal_tensors,
    output_boxes,
    sink_tensor,
    tiles,
)
from planner.schedule.epilogue import epilogue_steps
from planner.schedule.ir import GroupSchedule, OpTiling, Schedule
from planner.schedule.op_tiles import constant_inputs, split_tiles
from planner.schedule.timeline import Timeline
from planner.staging.group import emission_order
from planner.staging.lines import line_plan
from planner.staging.op import mnk_of
from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block, block_size, blocks, tile_boxes
from simulator.isa import Box
from simulator.machine import MachineConfig, mac_dtype
from simulator.systolic import macs_cycles, tensor_cycles, warm_tensor_cycles


@dataclass(frozen=True, slots=True)
class Price:
    """What a schedule costs: DRAM bytes moved (exact) and estimated cycles."""

    dram_bytes: int
    cycles: int


def price(lowered: LoweredGraph, machine: MachineConfig, schedule: Schedule) -> Price:
    """The schedule's DRAM bytes and estimated cycles."""
    timeline = Timeline(lowered, machine)
    resident = schedule.residency.tensors
    tilings = dict(schedule.ops)
    for unit in schedule.units():
        # The allocator places each unit's buffers first fit from the bottom, where the last unit's lay: their first
        # writes wait for those buffers' releases, so a unit starts filling its buffers once the last one is done.
        timeline.barrier = timeline.end
        if isinstance(unit, GroupSchedule):
            price_group(timeline, unit, resident)
        else:
            stmt = lowered.statements[unit]
            touched = resident & {*stmt.tensors_read, stmt.writes[0].tensor}
            epilogue = lowered.statements[unit + 1:unit + 1 + tilings[unit].epilogue]
            price_op(timeline, stmt, tilings[unit], touched, schedule.residency.room[unit], epilogue)
    return Price(timeline.dram_bytes, math.ceil(timeline.end))


def output_tensors(lowered: LoweredGraph) -> frozenset[str]:
    """Model outputs staging stores (a view of an input or constant is in DRAM already)."""
    graph = lowered.graph
    return frozenset(lowered.base(n) for n in graph.outputs if graph.tensors[lowered.base(n)].kind == "activation")


def price_op(timeline: Timeline, stmt: Statement, tiling: OpTiling, resident: frozenset[str], room: int,
             epilogue: Sequence[Statement] = ()) -> None:
    """One statement staged alone (planner.staging.op.stage_statement), with its `epilogue` statements in place on
    each output tile."""
    lowered, machine = timeline.lowered, timeline.machine
    out_tensor = stmt.writes[0].tensor

    def finish(box: Box, done: float) -> tuple[str, float]:  # the tile's epilogue: the tensor stored, when it is done
        tensor = out_tensor
        for op, block, tensor in epilogue_steps(epilogue, box):
            done = compute(timeline, op, block, done, tensor, warm=False)
        return tensor, done

    if tiling.split:
        found = split_tiles(lowered, machine, stmt, room)
        assert found is not None, f"{stmt.name}: a split the cost model cannot stage"
        # as planner.staging.split stages them: two slots per input, each reloaded once the slice two before has
        # read it; one running sum; the finished tile written again only once its store has left
        done, stored = 0.0, 0.0
        read_by: dict[tuple[str, int], float] = {}  # (input, slot) -> when the slice that last read it finished
        for index, (block, reads, writes, last) in enumerate(found):
            ready = max(timeline.load(t, box, max(timeline.barrier if index < 2 else 0.0,
                                                  read_by.get((t, index % 2), 0.0))) for t, box in reads.items())
            done = compute(timeline, stmt, block, max(ready, done, stored if last else 0.0), out_tensor,
                           warm=index > 0)
            for tensor in reads:
                read_by[(tensor, index % 2)] = done
            if last:
                tensor, ended = finish(writes[out_tensor], done)  # the next slice waits for the conv, not the epilogue
                stored = timeline.store(tensor, writes[out_tensor], ended)
        return
    tile_list = [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, dict(tiling.tile), tiling.order)]
    constant = constant_inputs(stmt, tile_list)
    stores_output = out_tensor not in resident or out_tensor in output_tensors(lowered)
    held: dict[str, list[tuple[Box, int, float]]] = {}  # per tensor, its slots: (box, when loaded, when landed)
    freed: dict[tuple[str, int], float] = {}  # (tensor, slot) -> when its last reader finished
    stamp = 0

    def load(reads: dict[str, Box], busy: dict[str, int]) -> tuple[dict[str, int], float]:
        nonlocal stamp
        placed, ready = {}, 0.0
        for tensor, box in reads.items():
            if tensor in resident:
                ready = max(ready, timeline.computed.get(tensor, 0.0))
                continue
            slots = held.setdefault(tensor, [])
            slot = next((s for s, (b, _, _) in enumerate(slots) if b == box), None)
            if slot is None:
                if len(slots) < (1 if tensor in constant else tiling.slots):
                    slots.append((box, stamp, 0.0))
                    slot = len(slots) - 1
                else:
                    slot = min((s for s in range(len(slots)) if s != busy.get(tensor)), key=lambda s: slots[s][1])
                landed = timeline.load(tensor, box, freed.get((tensor, slot), timeline.barrier))
                slots[slot] = (box, stamp, landed)
                stamp += 1
            placed[tensor] = slot
            ready = max(ready, slots[slot][2])
        return placed, ready

    pending = load(tile_list[0][1], {})
    out_free = [0.0] * tiling.slots
    for index, (block, _, writes) in enumerate(tile_list):
        # One slot per operand: no tile's loads run ahead of the compute before it (staging's single-slot mode).
        (current, ready) = pending if index == 0 or tiling.slots == 2 else load(tile_list[index][1], {})
        if index + 1 < len(tile_list) and tiling.slots == 2:
            pending = load(tile_list[index + 1][1], current)
        (_, out_box), = writes.items()
        after = max(ready, out_free[index % tiling.slots], timeline.barrier if index < 2 else 0.0)
        if stmt.indirect is not None:
            done = timeline.gather(stmt.indirect.table, out_box.numel // max(1, out_box.shape[-1]),
                                   out_box.shape[-1], after)
        else:
            done = compute(timeline, stmt, block, after, out_tensor, warm=index > 0)
        for tensor, slot in current.items():
            freed[(tensor, slot)] = done
        tensor_out, done = finish(out_box, done)
        out_free[index % tiling.slots] = timeline.store(tensor_out, out_box, done) if stores_output else done


def price_group(timeline: Timeline, plan: GroupSchedule, resident: frozenset[str]) -> None:
    """One fusion group (planner.staging.group.stage_group)."""
    lowered, machine = timeline.lowered, timeline.machine
    group = plan.group
    if group.lines:
        price_lines(timeline, group, resident)
        return
    statements = lowered.statements
    internal = internal_tensors(lowered, group)
    constants = {t: box for t, box in constant_boxes(lowered, group).items() if t not in resident}
    sink = sink_tensor(statements[group.last])
    stores_sink = sink not in resident or sink in output_tensors(lowered)
    steps_of = tiles(lowered, group)
    weights = {t: timeline.load(t, box, timeline.barrier) for t, box in constants.items()}
    loaded: dict[int, dict[str, float]] = {}
    finished: dict[tuple[int, str], float] = {}  # (tile, tensor) -> when the tile's step writing it finished
    carried = carried_inputs(lowered, group)

    def load_inputs(index: int, freed: dict[str, float] | None) -> dict[str, float]:
        boxes: dict[str, Box] = {}
        for step in steps_of[index]:
            for tensor, box in step.reads.items():
                if tensor not in internal and tensor not in constants and tensor not in resident:
                    boxes[tensor] = hull(boxes[tensor], box) if tensor in boxes else box
        after = timeline.barrier if index < 2 else 0.0
        return {t: loaded[index - 1][t] if index > 0 and t in carried[index - 1] else  # kept from the last tile
                timeline.load(t, box, after if freed is None else freed.get(t, timeline.barrier))
                for t, box in boxes.items()}

    freed: dict[str, float] = {}  # per input, when the last tile's last reader of it finished
    for index, position in emission_order(lowered, group, machine):
        for ahead in (index, index + 1)[:group.slots]:
            if ahead < len(steps_of) and ahead not in loaded:
                # one slot: a tile's load takes the room of the last tile's copy of that input, once read
                loaded[ahead] = load_inputs(ahead, dict(freed) if group.slots == 1 else None)
        step = steps_of[index][position]
        after = 0.0
        for tensor in step.reads:
            after = max(after, weights.get(tensor, 0.0), loaded[index].get(tensor, 0.0))
            after = max(after, finished.get((index, tensor), 0.0), timeline.computed.get(tensor, 0.0)
                        if tensor in resident or (group.cache and tensor in internal) else 0.0)
        done = compute(timeline, statements[step.index], step.block, after, step.output,
                       warm=not group.cache)
        finished[(index, step.output)] = done
        freed.update((tensor, done) for tensor in step.reads if tensor in loaded[index])
        if position == len(steps_of[index]) - 1 and stores_sink:
            timeline.store(sink, output_boxes(steps_of[index])[sink], done)


def price_lines(timeline: Timeline, group: Group, resident: frozenset[str]) -> None:
    """One line-buffered fusion group (planner.staging.lines.stage_lines): the carried rows copied on the vector
    engine, only the rows no tile loaded before loaded."""
    lowered, machine = timeline.lowered, timeline.machine
    statements = lowered.statements
    internal = internal_tensors(lowered, group)
    sink = sink_tensor(statements[group.last])
    stores_sink = sink not in resident or sink in output_tensors(lowered)
    weights = {t: timeline.load(t, box, timeline.barrier) for t, box in constant_boxes(lowered, group).items()}
    ready: dict[str, float] = {}  # tensor -> when what its buffer holds so far is written
    freed: dict[str, float] = {}  # tensor -> when the last reader of its last buffer finished
    rate = machine.vector_engine.elements_per_cycle
    for steps, plan in zip(tiles(lowered, group), line_plan(lowered, group), strict=True):
        lines = {t: line for t, line in plan.items() if t not in resident}
        for tensor, line in lines.items():
            if line.carry is not None:
                ready[tensor] = timeline.compute("vector", max(1, -(-line.carry.numel // rate)), ready[tensor])
            elif tensor in internal:
                ready[tensor] = 0.0
        for tensor, line in lines.items():
            if tensor not in internal and line.fresh is not None:
                landed = timeline.load(tensor, line.fresh, freed.get(tensor, timeline.barrier))
                ready[tensor] = max(ready[tensor], landed) if line.carry is not None else landed
        done = 0.0
        last_read = {t: p for p, step in enumerate(steps) for t in step.reads}
        for position, step in enumerate(steps):
            after = max((weights[t] if t in weights else timeline.computed.get(t, 0.0) if t in resident
                         else ready[t]) for t in step.reads) if step.reads else 0.0
            done = compute(timeline, statements[step.index], step.block, after, step.output, warm=False)
            if step.output in lines:
                ready[step.output] = max(ready[step.output], done)
            freed.update((t, done) for t in step.reads if t in lines)
            for tensor in sorted({*step.reads, step.output}):  # the rows a later tile takes, copied aside
                handing = lines.get(tensor)
                if handing is not None and handing.handed is not None and last_read.get(tensor, position) == position:
                    ready[tensor] = timeline.compute("vector", max(1, -(-handing.handed.numel // rate)),
                                                     max(ready[tensor], done))
        if stores_sink:
            timeline.store(sink, output_boxes(steps)[sink], done)


def compute(timeline: Timeline, stmt: Statement, block: Block, after: float, output: str, warm: bool) -> float:
    """One compute of `block`, at the simulator's rate for its engine (warm: its stationary load hidden)."""
    machine = timeline.machine
    share = block_size(stmt, block), max(1, block_size(stmt, {}))
    if stmt.engine == "tensor":
        mnk = mnk_of(stmt, block)
        engine, rate = machine.tensor_engine, mac_dtype(stmt.op_type, timeline.lowered.graph.planning_dtype or "fp32")
        if not mnk or min(mnk) <= 0:
            cycles = macs_cycles(-(-stmt.macs * share[0] // share[1]), engine, rate)
        else:
            cycles = (warm_tensor_cycles if warm else tensor_cycles)(mnk, engine, rate)
        return timeline.compute("tensor", cycles, after, output)
    elem_ops = -(-stmt.elem_ops * share[0] // share[1])
    return timeline.compute("vector", max(1, -(-elem_ops // machine.vector_engine.elements_per_cycle)), after,
                            output)
