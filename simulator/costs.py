"""What each instruction costs, worked out once before the event loop: its resource, cycles, bytes and descriptors.

`instruction_costs` reads the Program into columns (numpy arrays indexed by instruction id) and checks it: a queue
the machine lacks, an unknown tensor or buffer, a box outside its tensor, a dtype the tensor engine has no rate for
(`simulator.cost_checks` names the first culprit). The event loop (`simulator.events`), the stats and the energy
then work on these columns and never touch an instruction object again. It reads the instructions in one pass,
taking the fields of each while it is at hand, then works kind by kind with numpy; a program repeats a few tile
shapes many times, so the box arithmetic (`simulator.box_costs`) is done per distinct (tensor, box extents) and the
engine cycles (`simulator.engine_cycles`, formulas in `simulator.timing`'s docstring) per distinct tile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

from simulator.box_costs import box_costs, box_elements, boxes_by_rank
from simulator.cost_checks import first_problem
from simulator.dma import transfer as dma_transfer
from simulator.engine_cycles import TimingError, compute_cycles
from simulator.isa import Box, Compute, DmaGather, DmaLoad, DmaStore, Operand, Program, Release
from simulator.machine import MachineConfig

__all__ = ["COMPUTE", "FIRST_QUEUE", "GATHER", "LOAD", "NO_RESOURCE", "RELEASE", "STORE", "TENSOR", "VECTOR", "Costs",
           "TimingError", "compute_cycles", "instruction_costs"]

TENSOR, VECTOR, FIRST_QUEUE, NO_RESOURCE = 0, 1, 2, -1
# kinds of instruction, for the stats and the energy
LOAD, STORE, GATHER, COMPUTE, RELEASE = 0, 1, 2, 3, 4
# the fields read of each kind, all instructions of a kind at once
_TRANSFER = attrgetter("queue", "tensor", "box.start", "box.stop", "buffer", "op")
_TILE = attrgetter("engine", "op_type", "mnk", "macs", "elem_ops")  # what a compute's cycles depend on
_COMPUTE = attrgetter("node", "output.buffer", "output.box.start", "output.box.stop")
_OPERAND = attrgetter("buffer", "box.start", "box.stop")


@dataclass(frozen=True, slots=True)
class Costs:
    """Per instruction i (int64 arrays indexed by id): what the event loop, the stats and the energy need of it."""

    kind: np.ndarray           # LOAD, STORE, GATHER, COMPUTE or RELEASE
    resource: np.ndarray       # TENSOR, VECTOR, FIRST_QUEUE + queue, or NO_RESOURCE
    fixed_cycles: np.ndarray   # compute cycles, or a transfer's descriptor cycles
    warm_cycles: np.ndarray    # a tensor tile's cycles when warm (see compute_cycles); fixed_cycles otherwise
    burst_bytes: np.ndarray    # bytes a transfer moves through DRAM (0 otherwise)
    payload_bytes: np.ndarray
    descriptors: np.ndarray    # a transfer's DMA descriptors (0 otherwise)
    deps: list[tuple[int, ...]]  # as the instructions list them
    dep_counts: np.ndarray     # len(deps[i])
    dep_sources: np.ndarray    # every deps[i], concatenated in order
    op_names: tuple[str, ...]  # the op names (Compute.node, Dma*.op; "" for a Release), in order of first use
    op_ids: np.ndarray         # instruction i serves op_names[op_ids[i]]
    buffer_names: tuple[str, ...]  # the buffers written (a load's, a compute's or gather's output) or released
    buffer_ids: np.ndarray     # instruction i writes or releases buffer_names[buffer_ids[i]]; -1 for a store
    macs: int                  # of the tensor engine's computes
    elem_ops: int              # of the vector engine's computes
    scratchpad_read_bytes: int   # compute operands and the scratchpad side of stores
    scratchpad_write_bytes: int  # compute outputs and the scratchpad side of loads and gathers


def instruction_costs(program: Program, machine: MachineConfig) -> Costs:
    """The costs of every instruction of `program` on `machine`; raises TimingError at the first it cannot run."""
    instructions = program.instructions
    # one pass over the instructions, reading the fields of each while it is at hand (touching every object
    # again in later passes would cost more than the reading), then numpy over the fields, kind by kind
    kinds: list[int] = []
    deps: list[tuple[int, ...]] = []
    loads: list[tuple[Any, ...]] = []
    stores: list[tuple[Any, ...]] = []
    computes: list[Compute] = []
    fields: list[tuple[Any, ...]] = []  # of each compute
    operands: list[tuple[Any, ...]] = []  # of all computes' operands
    releases: list[str] = []
    gathers: list[DmaGather] = []
    add_kind, add_deps, add_operand = kinds.append, deps.append, operands.append
    instruction: Any
    for instruction in instructions:
        kind = type(instruction)
        add_deps(instruction.deps)
        if kind is Release:
            add_kind(RELEASE)
            releases.append(instruction.buffer)
        elif kind is Compute:
            add_kind(COMPUTE)
            computes.append(instruction)
            fields.append(_COMPUTE(instruction))
            for slot in instruction.inputs:
                if type(slot) is Operand:
                    add_operand(_OPERAND(slot))
            if instruction.accumulate is not None:
                add_operand(_OPERAND(instruction.accumulate))
        elif kind is DmaLoad:
            add_kind(LOAD)
            loads.append(_TRANSFER(instruction))
        elif kind is DmaStore:
            add_kind(STORE)
            stores.append(_TRANSFER(instruction))
        elif kind is DmaGather:
            add_kind(GATHER)
            gathers.append(instruction)
        else:
            raise TypeError(f"a Program holds DmaLoad, DmaStore, DmaGather, Compute and Release, not {kind.__name__}")
    size = len(kinds)
    kind_of = np.array(kinds, dtype=np.int64)
    columns = _Columns(program, machine, size)
    columns.transfers(np.flatnonzero(kind_of == LOAD), loads, True)
    columns.transfers(np.flatnonzero(kind_of == STORE), stores, False)
    columns.computes(np.flatnonzero(kind_of == COMPUTE), computes, fields, operands)
    columns.gathers(np.flatnonzero(kind_of == GATHER), gathers)
    columns.check(all(map(columns.buffer_bytes.__contains__, releases)))
    columns.buffer[kind_of == RELEASE] = releases
    counts = np.fromiter(map(len, deps), dtype=np.int64, count=size)
    sources = np.fromiter(chain.from_iterable(deps), dtype=np.int64, count=int(counts.sum()))
    # the ids of op and buffer names, leaving out the instructions known to have none (a Release serves no op, a
    # store writes no buffer)
    served, writes = kind_of != RELEASE, kind_of != STORE
    op_names, op_ids = _ids(columns.op, served, "" if releases else None)
    buffer_names, buffer_ids = _ids(columns.buffer, writes, None)
    if "" in buffer_names:
        empty = buffer_names.index("")
        buffer_ids = np.where(buffer_ids == empty, -1, buffer_ids - (buffer_ids > empty))
        buffer_names = buffer_names[:empty] + buffer_names[empty + 1:]
    return Costs(kind_of, columns.resource, columns.fixed, columns.warm, columns.burst, columns.payload,
                 columns.descriptors, deps, counts, sources, op_names, op_ids, buffer_names, buffer_ids, columns.macs,
                 columns.elem_ops, columns.read_bytes, columns.write_bytes)


def _ids(column: np.ndarray, named: np.ndarray, others: str | None) -> tuple[tuple[str, ...], np.ndarray]:
    # (distinct names in order of first appearance, each instruction's position among them): of the names of
    # column[named], plus `others` for the rest (-1 if None)
    names, ids = _first_ids(column[named].tolist())
    every = np.full(len(column), -1, dtype=np.int64)
    every[named] = ids
    if others is not None:
        if others not in names:
            names += (others,)
        every[~named] = names.index(others)
    return names, every


def _first_ids(names: list[str]) -> tuple[tuple[str, ...], np.ndarray]:
    # (distinct names in order of first appearance, each name's position among them)
    first: dict[str, int] = {}  # name -> where it first appears
    where = np.fromiter(map(first.setdefault, names, range(len(names))), dtype=np.int64, count=len(names))
    position = np.zeros(len(names), dtype=np.int64)
    position[np.fromiter(first.values(), dtype=np.int64, count=len(first))] = np.arange(len(first))
    return tuple(first), position[where]


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # (the distinct rows of a 2-d array of non-negative ints, each row's index among them), through one int key per
    # row when the rows' ranges allow
    bounds = [int(column.max()) + 1 for column in rows.T]
    if math.prod(bounds) >= 1 << 62:
        distinct, inverse = np.unique(rows, axis=0, return_inverse=True)
        return distinct, inverse.reshape(-1)
    key = np.zeros(len(rows), dtype=np.int64)
    for column, bound in zip(rows.T, bounds, strict=True):
        key = key * bound + column
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return rows[first], inverse.reshape(-1)


class _Columns:
    """The columns being filled, kind by kind, and the running byte totals."""

    def __init__(self, program: Program, machine: MachineConfig, size: int) -> None:
        self.program, self.machine = program, machine
        self.tensors = {tensor.name: tensor for tensor in program.tensors}
        self.buffer_bytes = {buffer.name: buffer.elem_bytes for buffer in program.buffers}  # element size as held
        self.resource = np.full(size, NO_RESOURCE, dtype=np.int64)
        self.fixed, self.warm, self.burst, self.payload, self.descriptors = (np.zeros(size, dtype=np.int64)
                                                                             for _ in range(5))
        self.op = np.full(size, "", dtype=object)
        self.buffer = np.full(size, "", dtype=object)
        self.macs = self.elem_ops = self.read_bytes = self.write_bytes = 0

    def check(self, ok: bool) -> None:
        """Raise the first instruction's problem unless `ok`."""
        if not ok:
            raise first_problem(self.program, self.machine) or TimingError("the program cannot be timed")

    def transfers(self, ids: np.ndarray, rows: list[tuple[Any, ...]], load: bool) -> None:
        # rows: the _TRANSFER fields of each load (or each store)
        if not rows:
            return
        dma = self.machine.dma
        queues, tensors, starts, stops, buffers, ops = zip(*rows, strict=True)
        queue = np.array(queues, dtype=np.int64)
        names, which = _first_ids(list(tensors))
        self.check(bool((queue >= 0).all() and (queue < dma.engines).all()) and self.tensors.keys() >= set(names)
                   and all(map(self.buffer_bytes.__contains__, buffers)))
        known = [self.tensors[name] for name in names]
        ranks = np.array([len(tensor.shape) for tensor in known], dtype=np.int64)
        shapes = np.zeros((len(known), int(ranks.max()) + 1), dtype=np.int64)
        for n, tensor in enumerate(known):
            shapes[n, :len(tensor.shape)] = tensor.shape
        count, payload, burst = (np.zeros(len(rows), dtype=np.int64) for _ in range(3))
        for positions, low, high in boxes_by_rank(starts, stops):
            rank, of = low.shape[1], which[positions]
            self.check(bool((ranks[of] == rank).all() and (low >= 0).all() and (high <= shapes[of, :rank]).all()))
            keys, inverse = _distinct_rows(np.column_stack((of, high - low)))
            table = np.zeros((len(keys), 3), dtype=np.int64)
            for row, (n, *extents) in enumerate(keys.tolist()):
                tensor = known[n]
                if tensor.layout is None:
                    table[row] = box_costs(tensor.shape, tuple(extents), tensor.elem_bytes, dma.burst_bytes,
                                           dma.descriptor_dims)[1:]
                else:
                    table[row] = -1  # a DRAM layout the planner chose: priced box by box below
            count[positions], payload[positions], burst[positions] = table[inverse].T
        for position in np.flatnonzero(count < 0).tolist():  # the runs and descriptors of the layout's pieces
            box = Box(starts[position], stops[position])
            moved = dma_transfer(self.tensors[tensors[position]], box, dma.burst_bytes,
                                 dma.descriptor_dims)
            count[position], payload[position], burst[position] = (moved.descriptors, moved.payload_bytes,
                                                                   moved.burst_bytes)
        self.resource[ids] = FIRST_QUEUE + queue
        self.fixed[ids] = self.warm[ids] = count * dma.descriptor_cycles
        self.burst[ids], self.payload[ids], self.descriptors[ids] = burst, payload, count
        self.op[ids] = ops
        moved_bytes = int(payload.sum())
        if load:
            self.write_bytes += moved_bytes
            self.buffer[ids] = buffers
        else:
            self.read_bytes += moved_bytes

    def region_bytes(self, buffers: Sequence[str], starts: Sequence[tuple[int, ...]],
                     stops: Sequence[tuple[int, ...]]) -> int:
        """Scratchpad bytes of the boxes `starts[i]..stops[i]` held in `buffers[i]`, at the buffers' element sizes."""
        elem_bytes = list(map(self.buffer_bytes.get, buffers))
        self.check(None not in elem_bytes)
        return int(box_elements(starts, stops) @ np.array(elem_bytes, dtype=np.int64))

    def computes(self, ids: np.ndarray, computes: list[Compute], fields: list[tuple[Any, ...]],
                 operands: list[tuple[Any, ...]]) -> None:
        # fields: the _COMPUTE fields of each compute; operands: the _OPERAND fields of all their operands
        if not computes:
            return
        nodes, outputs, starts, stops = zip(*fields, strict=True)
        if operands:
            self.read_bytes += self.region_bytes(*zip(*operands, strict=True))
        self.write_bytes += self.region_bytes(outputs, starts, stops)
        tiles = list(map(_TILE, computes))
        first = dict(zip(reversed(tiles), reversed(computes), strict=True))  # each tile's first compute
        two_buffers = self.machine.tensor_engine.stationary_buffers == 2
        table = []
        for tile, compute in first.items():
            try:
                cold = compute_cycles(compute, self.machine, self.program.dtype)
                hot = (compute_cycles(compute, self.machine, self.program.dtype, warm=True)
                       if two_buffers and tile[0] == "tensor" and compute.mnk else cold)
            except TimingError:
                self.check(False)
                raise
            table.append((TENSOR if tile[0] == "tensor" else VECTOR, cold, hot))
        index = dict(zip(first, range(len(first)), strict=True))
        of = np.fromiter(map(index.__getitem__, tiles), dtype=np.int64, count=len(tiles))
        uses = np.bincount(of, minlength=len(first)).tolist()
        for (engine, *_, macs, elem_ops), used in zip(first, uses, strict=True):
            if engine == "tensor":
                self.macs += macs * used
            else:
                self.elem_ops += elem_ops * used
        self.resource[ids], self.fixed[ids], self.warm[ids] = np.array(table, dtype=np.int64)[of].T
        self.op[ids] = nodes
        self.buffer[ids] = outputs

    def gathers(self, ids: np.ndarray, gathers: list[DmaGather]) -> None:
        dma = self.machine.dma
        for i, gather in zip(ids.tolist(), gathers, strict=True):
            table = self.tensors.get(gather.table)
            self.check(0 <= gather.queue < dma.engines and table is not None
                       and len(table.shape) == len(gather.window.start)
                       and gather.indices.buffer in self.buffer_bytes and gather.output.buffer in self.buffer_bytes)
            assert table is not None
            _, count, payload, burst = box_costs(table.shape, gather.row_box.shape, table.elem_bytes,
                                                 dma.burst_bytes, dma.descriptor_dims)
            # every row sits at its own address: a descriptor never spans two rows
            rows = gather.rows
            self.write_bytes += rows * payload
            self.resource[i] = FIRST_QUEUE + gather.queue
            self.fixed[i] = self.warm[i] = rows * count * dma.descriptor_cycles
            self.burst[i], self.payload[i], self.descriptors[i] = rows * burst, rows * payload, rows * count
            self.op[i], self.buffer[i] = gather.op, gather.output.buffer
