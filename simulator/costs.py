"""What each instruction costs, worked out once before the event loop: its resource, cycles, bytes and descriptors.

`instruction_costs` reads the Program in one pass and checks it (a queue the machine lacks, an unknown tensor or
buffer, a box outside its tensor, a dtype the tensor engine has no rate for); the event loop (`simulator.events`),
the stats and the energy then work on its flat per-instruction lists and never touch an instruction object again.
The formulas are in `simulator.timing`'s docstring; the box arithmetic is memoised per (tensor, box extents) and the
tensor-engine cycles per tile shape, since a program repeats a few tile shapes many times.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from operator import le, sub
from typing import Any

from simulator import systolic
from simulator.isa import Box, Compute, DmaGather, DmaLoad, DmaStore, Operand, Program, Release
from simulator.machine import MachineConfig, mac_dtype

TENSOR, VECTOR, FIRST_QUEUE, NO_RESOURCE = 0, 1, 2, -1
# kinds of instruction, for the stats and the energy
LOAD, STORE, GATHER, COMPUTE, RELEASE = 0, 1, 2, 3, 4


class TimingError(ValueError):
    """A program the timing model cannot run (a DMA queue the machine lacks, an unknown tensor or buffer, a dtype
    the tensor engine has no rate for); the message names the instruction."""


def contiguous_runs(shape: Sequence[int], box: Box) -> int:
    """How many contiguous row-major DRAM runs `box` of a tensor of `shape` makes: the product of the box's extents
    over the axes before the outermost axis from which on the box is contiguous.

    >>> contiguous_runs((4, 5, 6), Box((0, 0, 0), (2, 3, 6)))  # two rows of 3 x 6 elements
    2
    >>> contiguous_runs((4, 5, 6), Box((1, 2, 0), (3, 3, 4)))  # 2 x 1 runs of 4 elements
    2
    >>> contiguous_runs((4, 5, 6), Box((1, 0, 0), (3, 5, 6)))  # rows 1 and 2 entirely: one run
    1
    """
    return _runs(tuple(shape), box.shape)


def _runs(shape: tuple[int, ...], extents: tuple[int, ...]) -> int:
    axis = len(shape) - 1
    while axis > 0 and extents[axis] == shape[axis]:
        axis -= 1
    return math.prod(extents[:max(axis, 0)])


def descriptors(shape: Sequence[int], box: Box, descriptor_dims: int) -> int:
    """How many DMA descriptors move `box` of a tensor of `shape` when one descriptor moves a strided box of up to
    `descriptor_dims` dimensions: the contiguous run is the innermost dimension, then each outer axis the box spans
    more than once is a strided dimension (two neighbours merge into one when the box covers the inner one whole, as
    their addresses then step by one stride). The outermost dimensions beyond what one descriptor holds repeat it.
    With `descriptor_dims` 1 this is `contiguous_runs`.

    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 3, 6)), 1)  # 2 rows of 3 x 6 contiguous elements: 2 runs
    2
    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 3, 6)), 2)  # a run and one strided dim (2 rows)
    1
    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 3, 4)), 2)  # a run of 4, then 2 x 3 strided: 2 descriptors
    2
    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 5, 4)), 2)  # axes 0 and 1 merge (axis 1 whole): 10 rows, 1 dim
    1
    """
    return _descriptors(tuple(shape), box.shape, descriptor_dims)


def _descriptors(shape: tuple[int, ...], extents: tuple[int, ...], descriptor_dims: int) -> int:
    axis = len(shape) - 1
    while axis > 0 and extents[axis] == shape[axis]:
        axis -= 1
    strides = [math.prod(shape[a + 1:]) for a in range(axis)]
    strided: list[list[int]] = []  # [extent, stride] of the outer dims the box spans, outermost first, merged
    for outer in range(axis):
        if extents[outer] == 1:
            continue
        if strided and strided[-1][1] == extents[outer] * strides[outer]:
            strided[-1] = [strided[-1][0] * extents[outer], strides[outer]]
        else:
            strided.append([extents[outer], strides[outer]])
    return math.prod(extent for extent, _ in strided[:max(0, len(strided) - (descriptor_dims - 1))])


@functools.lru_cache(maxsize=1 << 14)
def _box_costs(shape: tuple[int, ...], extents: tuple[int, ...], elem_bytes: int, burst_size: int,
               descriptor_dims: int) -> tuple[int, int, int, int]:
    # (runs, descriptors, payload bytes, burst-rounded bytes) of one box of one tensor
    runs = _runs(shape, extents)
    payload = math.prod(extents) * elem_bytes
    count = runs if descriptor_dims == 1 else _descriptors(shape, extents, descriptor_dims)
    return runs, count, payload, runs * -(-(payload // runs) // burst_size) * burst_size


def transfer_bytes(tensor_shape: Sequence[int], elem_bytes: int, box: Box, burst_bytes: int) -> tuple[int, int, int]:
    """(runs, payload bytes, burst-rounded bytes) of a transfer of `box`.

    >>> transfer_bytes((4, 6), 2, Box((0, 0), (4, 3)), 64)  # 4 runs of 6 bytes, each one 64-byte burst
    (4, 24, 256)
    """
    runs, _, payload, burst = _box_costs(tuple(tensor_shape), box.shape, elem_bytes, burst_bytes, 1)
    return runs, payload, burst


def gather_bytes(table_shape: Sequence[int], elem_bytes: int, gather: DmaGather, burst_bytes: int,
                 ) -> tuple[int, int, int]:
    """(runs, payload bytes, burst-rounded bytes) of an indirect DMA: its rows, each moved like a box of its own.

    >>> from simulator.isa import Operand
    >>> g = DmaGather(0, (), 0, "emb", 0, Box((0, 0), (100, 6)), Operand("ids", Box((0,), (3,)), "b", (0,)),
    ...               Operand("y", Box((0, 0), (3, 6)), "o", (0, 0)))
    >>> gather_bytes((100, 6), 4, g, 64)  # 3 rows of 24 bytes, each one 64-byte burst
    (3, 72, 192)
    """
    runs, payload, burst = transfer_bytes(table_shape, elem_bytes, gather.row_box, burst_bytes)
    return runs * gather.rows, payload * gather.rows, burst * gather.rows


def compute_cycles(compute: Compute, machine: MachineConfig, dtype: str, *, warm: bool = False) -> int:
    """Cycles one Compute occupies its engine (formulas in `simulator.timing`); `warm`: it follows another tensor
    tile back to back with its operands ready early, so its first load and fill hid under that one."""
    if compute.engine == "vector":
        return max(1, -(-compute.elem_ops // machine.vector_engine.elements_per_cycle))
    engine = machine.tensor_engine
    dtype = mac_dtype(compute.op_type, dtype)
    macs_per_cycle = engine.macs_per_cycle.get(dtype)
    if macs_per_cycle is None:
        raise TimingError(f"instruction {compute.id}: the tensor engine has no MACs per cycle for dtype {dtype!r} "
                          f"(it has {', '.join(engine.macs_per_cycle) or 'none'})")
    if not compute.mnk:
        return systolic.macs_cycles(compute.macs, engine, dtype)
    if len(compute.mnk) != 3 or min(compute.mnk) <= 0:
        raise TimingError(f"instruction {compute.id}: mnk {compute.mnk} is not three positive extents (M, N, K)")
    m, n, k = compute.mnk
    return (systolic.warm_tensor_cycles if warm else systolic.tensor_cycles)((m, n, k), engine, dtype)


@dataclass(frozen=True, slots=True)
class Costs:
    """Per instruction i (lists indexed by id): what the event loop, the stats and the energy need of it."""

    kind: list[int]            # LOAD, STORE, GATHER, COMPUTE or RELEASE
    resource: list[int]        # TENSOR, VECTOR, FIRST_QUEUE + queue, or NO_RESOURCE
    fixed_cycles: list[int]    # compute cycles, or a transfer's descriptor cycles
    warm_cycles: list[int]     # a tensor tile's cycles when warm (see compute_cycles); fixed_cycles otherwise
    burst_bytes: list[int]     # bytes a transfer moves through DRAM (0 otherwise)
    payload_bytes: list[int]
    descriptors: list[int]     # a transfer's DMA descriptors (0 otherwise)
    deps: list[tuple[int, ...]]
    op: list[str]              # the op it serves (Compute.node, Dma*.op; "" for a Release)
    buffer: list[str]          # the buffer it writes (a load's, a compute's or gather's output) or releases; "" else
    macs: int                  # of the tensor engine's computes
    elem_ops: int              # of the vector engine's computes
    scratchpad_read_bytes: int   # compute operands and the scratchpad side of stores
    scratchpad_write_bytes: int  # compute outputs and the scratchpad side of loads and gathers


def instruction_costs(program: Program, machine: MachineConfig) -> Costs:
    """The costs of every instruction of `program` on `machine`; raises TimingError at the first it cannot run."""
    tensors = {tensor.name: tensor for tensor in program.tensors}
    buffer_bytes = {buffer.name: buffer.elem_bytes for buffer in program.buffers}  # element size as held
    dma = machine.dma
    burst_size, descriptor_cycles, dims = dma.burst_bytes, dma.descriptor_cycles, dma.descriptor_dims
    queues = dma.engines
    two_buffers = machine.tensor_engine.stationary_buffers == 2
    compute_memo: dict[tuple[object, ...], tuple[int, int, int]] = {}
    dtype = program.dtype
    prod = math.prod
    # one row per instruction: (kind, resource, fixed, warm, burst bytes, payload bytes, descriptors, op, buffer)
    rows: list[tuple[int, int, int, int, int, int, int, str, str]] = []
    append = rows.append
    macs = elem_ops = read_bytes = write_bytes = 0

    def unknown_buffer(instruction_id: int, name: str) -> TimingError:
        return TimingError(f"instruction {instruction_id}: unknown buffer {name!r} "
                           f"(known: {', '.join(sorted(buffer_bytes)) or 'none'})")

    def bad_queue(instruction: DmaLoad | DmaStore | DmaGather) -> TimingError:
        return TimingError(f"instruction {instruction.id}: DMA queue {instruction.queue} is out of range "
                           f"(the machine has {queues} DMA engines)")

    instruction: Any  # one of the Instruction types, told apart by `type(...) is` (cheaper than isinstance)
    for instruction in program.instructions:
        kind = type(instruction)
        if kind is Compute:
            operands = [slot for slot in instruction.inputs if type(slot) is Operand]
            if instruction.accumulate is not None:
                operands.append(instruction.accumulate)
            for operand in operands:
                elem_bytes = buffer_bytes.get(operand.buffer)
                if elem_bytes is None:
                    raise unknown_buffer(instruction.id, operand.buffer)
                box = operand.box
                read_bytes += prod(map(sub, box.stop, box.start)) * elem_bytes
            output = instruction.output
            elem_bytes = buffer_bytes.get(output.buffer)
            if elem_bytes is None:
                raise unknown_buffer(instruction.id, output.buffer)
            box = output.box
            write_bytes += prod(map(sub, box.stop, box.start)) * elem_bytes
            engine = instruction.engine
            key = (engine, instruction.op_type, instruction.mnk, instruction.macs, instruction.elem_ops)
            cycles = compute_memo.get(key)
            if cycles is None:
                cold = compute_cycles(instruction, machine, dtype)
                hot = (compute_cycles(instruction, machine, dtype, warm=True)
                       if two_buffers and engine == "tensor" and instruction.mnk else cold)
                cycles = compute_memo[key] = (TENSOR if engine == "tensor" else VECTOR, cold, hot)
            if cycles[0] == TENSOR:
                macs += instruction.macs
            else:
                elem_ops += instruction.elem_ops
            append((COMPUTE, cycles[0], cycles[1], cycles[2], 0, 0, 0, instruction.node, output.buffer))
        elif kind is DmaLoad or kind is DmaStore:
            if not 0 <= instruction.queue < queues:
                raise bad_queue(instruction)
            tensor = tensors.get(instruction.tensor)
            if tensor is None:
                raise TimingError(f"instruction {instruction.id}: unknown tensor {instruction.tensor!r} "
                                  f"(known: {', '.join(sorted(tensors)) or 'none'})")
            box, shape = instruction.box, tensor.shape
            start, stop = box.start, box.stop
            if len(start) != len(shape) or (start and min(start) < 0) or not all(map(le, stop, shape)):
                raise TimingError(f"instruction {instruction.id}: box {list(start)}..{list(stop)} is not "
                                  f"inside tensor {tensor.name} of shape {list(shape)}")
            if instruction.buffer not in buffer_bytes:
                raise unknown_buffer(instruction.id, instruction.buffer)
            _, count, payload, burst = _box_costs(shape, tuple(map(sub, stop, start)), tensor.elem_bytes,
                                                  burst_size, dims)
            if kind is DmaLoad:
                write_bytes += payload
                append((LOAD, FIRST_QUEUE + instruction.queue, count * descriptor_cycles,
                        count * descriptor_cycles, burst, payload, count, instruction.op, instruction.buffer))
            else:
                read_bytes += payload
                append((STORE, FIRST_QUEUE + instruction.queue, count * descriptor_cycles,
                        count * descriptor_cycles, burst, payload, count, instruction.op, ""))
        elif kind is Release:
            if instruction.buffer not in buffer_bytes:
                raise unknown_buffer(instruction.id, instruction.buffer)
            append((RELEASE, NO_RESOURCE, 0, 0, 0, 0, 0, "", instruction.buffer))
        else:
            if not 0 <= instruction.queue < queues:
                raise bad_queue(instruction)
            table = tensors.get(instruction.table)
            if table is None or len(table.shape) != len(instruction.window.start):
                raise TimingError(f"instruction {instruction.id}: table {instruction.table!r} is not a tensor of "
                                  f"the window's rank")
            for operand in (instruction.indices, instruction.output):
                if operand.buffer not in buffer_bytes:
                    raise unknown_buffer(instruction.id, operand.buffer)
            rows_moved, row_box = instruction.rows, instruction.row_box
            _, count, payload, burst = _box_costs(table.shape, row_box.shape, table.elem_bytes, burst_size, dims)
            # every row sits at its own address: a descriptor never spans two rows
            count, payload = rows_moved * count, rows_moved * payload
            write_bytes += payload
            append((GATHER, FIRST_QUEUE + instruction.queue, count * descriptor_cycles, count * descriptor_cycles,
                    rows_moved * burst, payload, count, instruction.op, instruction.output.buffer))
    columns: list[list[Any]] = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in range(9)]
    kinds, resources, fixed, warm, bursts, payloads, counts, ops, buffers = columns
    return Costs(kinds, resources, fixed, warm, bursts, payloads, counts,
                 [instruction.deps for instruction in program.instructions], ops, buffers, macs, elem_ops, read_bytes,
                 write_bytes)
