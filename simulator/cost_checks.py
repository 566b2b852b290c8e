"""The first instruction of a program that the timing model cannot run, and why, in one line.

`simulator.costs` checks a whole program at once with numpy and only learns that something is wrong; this walks the
instructions in program order to name the first culprit and what is wrong with it (checked in the order: DMA queue,
tensor, box, buffers, engine rate).
"""

from __future__ import annotations

from operator import le
from typing import Any

from simulator.engine_cycles import TimingError, compute_cycles
from simulator.isa import Compute, DmaLoad, DmaStore, Operand, Program, Release
from simulator.machine import MachineConfig


def first_problem(program: Program, machine: MachineConfig) -> TimingError | None:
    """The error of the first instruction the timing model cannot run, or None if it can run them all."""
    tensors = {tensor.name: tensor for tensor in program.tensors}
    buffers = {buffer.name for buffer in program.buffers}
    queues = machine.dma.engines
    instruction: Any
    for instruction in program.instructions:
        kind = type(instruction)
        if kind is not Compute and kind is not Release and not 0 <= instruction.queue < queues:
            return TimingError(f"instruction {instruction.id}: DMA queue {instruction.queue} is out of range "
                               f"(the machine has {queues} DMA engines)")
        if kind is Compute:
            operands = [slot for slot in instruction.inputs if type(slot) is Operand]
            if instruction.accumulate is not None:
                operands.append(instruction.accumulate)
            names = [operand.buffer for operand in (*operands, instruction.output)]
        elif kind is DmaLoad or kind is DmaStore:
            tensor = tensors.get(instruction.tensor)
            if tensor is None:
                return TimingError(f"instruction {instruction.id}: unknown tensor {instruction.tensor!r} "
                                   f"(known: {', '.join(sorted(tensors)) or 'none'})")
            start, stop, shape = instruction.box.start, instruction.box.stop, tensor.shape
            if len(start) != len(shape) or (start and min(start) < 0) or not all(map(le, stop, shape)):
                return TimingError(f"instruction {instruction.id}: box {list(start)}..{list(stop)} is not "
                                   f"inside tensor {tensor.name} of shape {list(shape)}")
            names = [instruction.buffer]
        elif kind is Release:
            names = [instruction.buffer]
        else:
            table = tensors.get(instruction.table)
            if table is None or len(table.shape) != len(instruction.window.start):
                return TimingError(f"instruction {instruction.id}: table {instruction.table!r} is not a tensor of "
                                   f"the window's rank")
            names = [instruction.indices.buffer, instruction.output.buffer]
        for name in names:
            if name not in buffers:
                return TimingError(f"instruction {instruction.id}: unknown buffer {name!r} "
                                   f"(known: {', '.join(sorted(buffers)) or 'none'})")
        if kind is Compute:
            try:
                compute_cycles(instruction, machine, program.dtype)
            except TimingError as error:
                return error
    return None
