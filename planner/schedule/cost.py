"""Prices a Schedule without building a Program: DRAM bytes exactly, cycles as an estimate.

Bytes are counted from the same boxes staging moves: per op alone, its tiles in the chosen loop order with the
two-slot reuse staging does (a box already in a slot is not loaded again); per group, its constants once and every
tile's inputs and sink (planner.groups); per split reduction, every slice's inputs and each finished tile. They equal
the simulated program's `dram_bytes_read + dram_bytes_written` (tests/planner/test_schedule_cost.py).

Cycles use the simulator's own formulas (`simulator.systolic.tensor_cycles`, the vector rate, `simulator.timing
.descriptors` and `transfer_bytes` for each DMA): per unit (a group, or an op alone) the busiest resource (tensor
engine, vector engine, the DMA queues' descriptor stages, DRAM bandwidth), plus the DRAM latency of its first load
and its last store, summed over units. A group whose tiles run one after another (cached) adds its engines.

>>> # price(lowered, machine, schedule).dram_bytes == simulate(stage(schedule), machine).stats.dram_bytes_read + ...
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

from planner.groups import constant_boxes, hull, internal_tensors, output_boxes, sink_tensor, tiles
from planner.schedule.ir import GroupSchedule, OpTiling, Schedule
from planner.schedule.op_tiles import constant_inputs, split_tiles
from planner.stage_op import mnk_of
from planner.staging import SPLIT_BYTES
from planner.stmt import LoweredGraph, Statement
from planner.tiling import Block, block_size, blocks, tile_boxes
from simulator.isa import Box
from simulator.machine import MachineConfig, mac_dtype
from simulator.systolic import macs_cycles, tensor_cycles, warm_tensor_cycles
from simulator.timing import descriptors, transfer_bytes

Transfer = tuple[str, Box]  # (DRAM tensor, box)


@dataclass(frozen=True, slots=True)
class Price:
    """What a schedule costs: DRAM bytes moved (exact) and estimated cycles."""

    dram_bytes: int
    cycles: int


@dataclass(slots=True)
class _Unit:
    transfers: list[Transfer]
    tensor_cycles: int = 0
    vector_cycles: int = 0
    sequential: bool = False  # tensor and vector steps wait for each other (a cached group's tiles)


def price(lowered: LoweredGraph, machine: MachineConfig, schedule: Schedule) -> Price:
    """The schedule's DRAM bytes and estimated cycles."""
    total_bytes = cycles = 0
    for unit in units(lowered, machine, schedule):
        total_bytes += sum(box.numel * lowered.graph.elem_bytes(t) for t, box in unit.transfers)
        cycles += unit_cycles(lowered, machine, unit)
    return Price(total_bytes, cycles)


def units(lowered: LoweredGraph, machine: MachineConfig, schedule: Schedule) -> Iterator[_Unit]:
    resident = schedule.residency.tensors
    tilings = dict(schedule.ops)
    for unit in schedule.units():
        if isinstance(unit, GroupSchedule):
            yield group_unit(lowered, machine, unit, resident)
        else:
            stmt = lowered.statements[unit]
            touched = resident & {*stmt.tensors_read, stmt.writes[0].tensor}
            yield op_unit(lowered, machine, stmt, tilings[unit], touched, schedule.residency.room[unit])


def output_tensors(lowered: LoweredGraph) -> frozenset[str]:
    """Model outputs staging stores (a view of an input or constant is in DRAM already)."""
    graph = lowered.graph
    return frozenset(lowered.base(n) for n in graph.outputs if graph.tensors[lowered.base(n)].kind == "activation")


def op_unit(lowered: LoweredGraph, machine: MachineConfig, stmt: Statement, tiling: OpTiling,
            resident: frozenset[str], room: int) -> _Unit:
    """The transfers and compute of one statement staged alone (planner.stage_op.stage_statement)."""
    unit = _Unit([])
    dtype = lowered.graph.planning_dtype or "fp32"
    if tiling.split:
        found = split_tiles(lowered, machine, stmt, room)
        assert found is not None, f"{stmt.name}: a split the cost model cannot stage"
        for block, reads, writes, last in found:
            unit.transfers += list(reads.items())
            if last:
                unit.transfers += list(writes.items())
            _add_compute(unit, stmt, block, machine, dtype)
        return unit
    tile = dict(tiling.tile)
    tile_list = [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, tile, tiling.order)]
    constant = constant_inputs(stmt, tile_list)
    outputs = output_tensors(lowered)
    held: dict[str, list[tuple[Box, int]]] = {}  # per tensor, its slots: (box, when loaded)
    stamp = 0

    def load(reads: dict[str, Box], busy: dict[str, int]) -> dict[str, int]:
        nonlocal stamp
        placed = {}
        for tensor, box in reads.items():
            if tensor in resident:
                continue
            slots = held.setdefault(tensor, [])
            slot = next((s for s, (b, _) in enumerate(slots) if b == box), None)
            if slot is None:
                if len(slots) < (1 if tensor in constant else 2):
                    slots.append((box, stamp))
                    slot = len(slots) - 1
                else:
                    slot = min((s for s in range(len(slots)) if s != busy.get(tensor)), key=lambda s: slots[s][1])
                    slots[slot] = (box, stamp)
                stamp += 1
                if stmt.indirect is None or tensor != stmt.indirect.table:
                    unit.transfers.append((tensor, box))
            placed[tensor] = slot
        return placed

    pending = load(tile_list[0][1], {})
    for index, (block, _, writes) in enumerate(tile_list):
        current = pending
        if index + 1 < len(tile_list):
            pending = load(tile_list[index + 1][1], current)
        (out_tensor, out_box), = writes.items()
        if stmt.indirect is not None:
            unit.transfers.append((stmt.indirect.table, _gathered(lowered, stmt, out_box)))
        else:
            _add_compute(unit, stmt, block, machine, dtype)
        if out_tensor not in resident or out_tensor in outputs:
            unit.transfers.append((out_tensor, out_box))
    return unit


def _gathered(lowered: LoweredGraph, stmt: Statement, out_box: Box) -> Box:
    # A gather moves the output box's worth of table rows; priced as a box of the output's shape.
    return out_box


def group_unit(lowered: LoweredGraph, machine: MachineConfig, plan: GroupSchedule, resident: frozenset[str]) -> _Unit:
    """The transfers and compute of one fusion group (planner.stage_group.stage_group)."""
    group = plan.group
    statements = lowered.statements
    internal = internal_tensors(lowered, group)
    constants = constant_boxes(lowered, group)
    sink = sink_tensor(statements[group.last])
    outputs = output_tensors(lowered)
    dtype = lowered.graph.planning_dtype or "fp32"
    unit = _Unit(list(constants.items()), sequential=group.cache)
    for steps in tiles(lowered, group):
        boxes: dict[str, Box] = {}
        for step in steps:
            for tensor, box in step.reads.items():
                if tensor not in internal and tensor not in constants and tensor not in resident:
                    boxes[tensor] = hull(boxes[tensor], box) if tensor in boxes else box
            _add_compute(unit, statements[step.index], step.block, machine, dtype)
        unit.transfers += list(boxes.items())
        if sink not in resident or sink in outputs:
            unit.transfers.append((sink, output_boxes(steps)[sink]))
    return unit


def _add_compute(unit: _Unit, stmt: Statement, block: Block, machine: MachineConfig, dtype: str) -> None:
    share = block_size(stmt, block), max(1, block_size(stmt, {}))
    if stmt.engine == "tensor":
        mnk = mnk_of(stmt, block)
        engine, rate = machine.tensor_engine, mac_dtype(stmt.op_type, dtype)
        if not mnk or min(mnk) <= 0:
            unit.tensor_cycles += macs_cycles(-(-stmt.macs * share[0] // share[1]), engine, rate)
        else:
            warm = unit.tensor_cycles > 0 and not unit.sequential
            unit.tensor_cycles += (warm_tensor_cycles if warm else tensor_cycles)(mnk, engine, rate)
    else:
        elem_ops = -(-stmt.elem_ops * share[0] // share[1])
        unit.vector_cycles += max(1, -(-elem_ops // machine.vector_engine.elements_per_cycle))


def unit_cycles(lowered: LoweredGraph, machine: MachineConfig, unit: _Unit) -> int:
    """The busiest resource of the unit, plus one DRAM round trip to start it and one to finish it."""
    dma = machine.dma
    descriptor_cycles = burst_bytes = 0
    for tensor, box in unit.transfers:
        shape, elem_bytes = lowered.graph.tensors[tensor].shape, lowered.graph.elem_bytes(tensor)
        if len(shape) != len(box.start):  # a gather's rows: one run each
            descriptor_cycles += box.numel // max(1, box.shape[-1]) * dma.descriptor_cycles
            burst_bytes += box.numel * elem_bytes
            continue
        for part in _parts(box, elem_bytes, dma.engines):
            descriptor_cycles += descriptors(shape, part, dma.descriptor_dims) * dma.descriptor_cycles
            burst_bytes += transfer_bytes(shape, elem_bytes, part, dma.burst_bytes)[2]
    bandwidth = min(machine.dram.bandwidth_bytes_per_cycle, dma.engines * dma.engine_bandwidth_bytes_per_cycle)
    compute = unit.tensor_cycles + unit.vector_cycles if unit.sequential else \
        max(unit.tensor_cycles, unit.vector_cycles)
    moving = max(descriptor_cycles / dma.engines, burst_bytes / bandwidth)
    return math.ceil(max(compute, moving)) + (2 * machine.dram.latency_cycles if unit.transfers else 0)


def _parts(box: Box, elem_bytes: int, engines: int) -> list[Box]:
    # planner.staging.ProgramBuilder._split: a large box goes out as one slab per queue along its outermost axis.
    axis = next((a for a, extent in enumerate(box.shape) if extent > 1), None)
    count = 1 if axis is None else min(engines, box.shape[axis], max(1, box.numel * elem_bytes // SPLIT_BYTES))
    if count == 1 or axis is None:
        return [box]
    cuts = [box.start[axis] + box.shape[axis] * i // count for i in range(count + 1)]
    return [Box((*box.start[:axis], lo, *box.start[axis + 1:]), (*box.stop[:axis], hi, *box.stop[axis + 1:]))
            for lo, hi in itertools.pairwise(cuts)]
