"""The DRAM layout of every intermediate the program spills: chosen from the boxes its writers store and its readers
load, so that they move in few long runs.

Model inputs, outputs and constants keep their ONNX layout (their bytes belong to the host). An intermediate belongs
to the planner: for each one, every candidate layout is priced by the DMA time of its own boxes, as the timing model
charges them (`simulator.dma`: descriptors at the machine's cost each, plus burst-rounded bytes at the DMA rate), and
the cheapest wins; ONNX's row-major order is a candidate, and wins ties. The candidates are the axis orders that keep
ONNX's order or move one axis innermost (channels-last for NCHW), each plain or blocked in the tiles' own shape: the
largest block each axis's box edges all fall on (all boxes, the stored ones, or the loaded ones).

>>> from simulator.isa import Box, DmaStore, DramTensor
>>> from simulator.machine_file import load_machine
>>> x = DramTensor("x", (1, 64, 8, 8), "float32", 2, "intermediate")
>>> stores = [DmaStore(i, (), 0, "b", (0, 0, 0, 0), "x", Box((0, 0, 2 * i, 0), (1, 64, 2 * i + 2, 4)))
...           for i in range(4)]
>>> [chosen] = choose_layouts((x,), stores, load_machine("edge-npu"))
>>> chosen.layout  # channels-last: a tile is 2 runs of 4 pixels x 64 channels, one 3-D descriptor
DramLayout(order=(0, 2, 3, 1), block=())
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from simulator.dma import transfer
from simulator.isa import Box, DmaGather, DmaLoad, DmaStore, DramTensor, Instruction
from simulator.layout import DramLayout
from simulator.machine import MachineConfig


def choose_layouts(tensors: Sequence[DramTensor], instructions: Iterable[Instruction],
                   machine: MachineConfig) -> tuple[DramTensor, ...]:
    """`tensors`, each intermediate with the layout that moves its boxes fastest (see the module docstring)."""
    stored: dict[str, Counter[Box]] = {}
    loaded: dict[str, Counter[Box]] = {}
    gathered: set[str] = set()
    for instruction in instructions:
        if isinstance(instruction, DmaStore):
            stored.setdefault(instruction.tensor, Counter())[instruction.box] += 1
        elif isinstance(instruction, DmaLoad):
            loaded.setdefault(instruction.tensor, Counter())[instruction.box] += 1
        elif isinstance(instruction, DmaGather):
            gathered.add(instruction.table)  # its rows move as the table's row-major slabs
    chosen = []
    for tensor in tensors:
        if tensor.role != "intermediate" or tensor.name in gathered or tensor.name not in stored:
            chosen.append(tensor)
            continue
        writes, reads = stored[tensor.name], loaded.get(tensor.name, Counter())
        chosen.append(_cheapest(tensor, writes, reads, machine))
    return tuple(chosen)


def dma_cycles(tensor: DramTensor, boxes: Counter[Box], machine: MachineConfig) -> float:
    """The DMA time of moving `boxes` (each as many times as counted) of the tensor under its layout: descriptor
    cycles plus burst-rounded bytes at the rate one queue moves them."""
    dma = machine.dma
    rate = min(dma.engine_bandwidth_bytes_per_cycle, machine.dram.bandwidth_bytes_per_cycle)
    total = 0.0
    for box, count in boxes.items():
        moved = transfer(tensor, box, dma.burst_bytes, dma.descriptor_dims)
        total += count * (moved.descriptors * dma.descriptor_cycles + moved.burst_bytes / rate)
    return total


def candidates(shape: tuple[int, ...], box_sets: Sequence[Iterable[Box]]) -> list[DramLayout | None]:
    """The layouts tried for a tensor of `shape` whose boxes are `box_sets` (all, stored, loaded): None first.

    >>> [(c.order, c.block) if c else None for c in candidates((4, 6), [[Box((0, 0), (2, 6))]])]
    [None, ((1, 0), ()), ((0, 1), (2, 6)), ((1, 0), (2, 6))]
    """
    rank = len(shape)
    identity = tuple(range(rank))
    orders = [identity] + [(*(a for a in identity if a != last), last)
                           for last in range(rank - 1) if shape[last] > 1]
    blocks: list[tuple[int, ...]] = [()]
    for boxes in box_sets:
        block = _edges_block(shape, boxes)
        if block not in blocks and block != shape:
            blocks.append(block)
    found: list[DramLayout | None] = [None]
    for block in blocks:
        for order in orders:
            if order != identity or block:
                found.append(DramLayout(order, block))
    return found


def _edges_block(shape: tuple[int, ...], boxes: Iterable[Box]) -> tuple[int, ...]:
    """Per axis, the largest extent dividing the axis that every box edge falls on."""
    block = list(shape)
    for box in boxes:
        for axis, (start, stop) in enumerate(zip(box.start, box.stop, strict=True)):
            block[axis] = math.gcd(block[axis], start, stop)
    return tuple(block)


def _cheapest(tensor: DramTensor, writes: Counter[Box], reads: Counter[Box], machine: MachineConfig) -> DramTensor:
    boxes = writes + reads
    best, best_cycles = tensor, dma_cycles(tensor, boxes, machine)
    for layout in candidates(tensor.shape, [boxes, writes, reads] if reads else [writes])[1:]:
        if layout is None or layout.check(tensor.shape):
            continue
        trial = DramTensor(tensor.name, tensor.shape, tensor.dtype, tensor.elem_bytes, tensor.role, layout)
        cycles = dma_cycles(trial, boxes, machine)
        if cycles < best_cycles * (1 - 1e-9):  # strictly better: ties keep the simpler layout found first
            best, best_cycles = trial, cycles
    return best
