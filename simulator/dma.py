"""What a DMA transfer of a box does in DRAM: its contiguous runs, its descriptors, the bytes each one touches.

A tensor lies in DRAM in its layout (`simulator.layout`; row-major when it has none). A box splits into pieces, each
one box of the physical array; a piece makes contiguous runs (row-major in the physical array) and is moved by
descriptors: one descriptor is a run repeated over up to `descriptor_dims - 1` strided dimensions (`strided_dims`),
and the outer dimensions beyond that repeat the descriptor. The timing model charges these counts
(`transfer`), verify checks that the descriptors land inside the tensor and cover the box exactly
(`descriptor_faults`), and the functional simulator moves the bytes descriptor by descriptor (`element_offsets`).

>>> from simulator.isa import Box, DmaGather, DmaLoad, DmaStore, DramTensor, Program
>>> from simulator.layout import DramLayout
>>> x = DramTensor("x", (1, 64, 8, 8), "float32", 2, "intermediate")
>>> transfer(x, Box((0, 0, 0, 0), (1, 64, 2, 2)), 64, 1)  # NCHW: 64 x 2 runs of 2 elements
Transfer(runs=128, descriptors=128, payload_bytes=512, burst_bytes=8192)
>>> nhwc = DramTensor("x", (1, 64, 8, 8), "float32", 2, "intermediate", DramLayout((0, 2, 3, 1)))
>>> transfer(nhwc, Box((0, 0, 0, 0), (1, 64, 2, 2)), 64, 1)  # channels-last: 2 runs of 2 x 64 elements
Transfer(runs=2, descriptors=2, payload_bytes=512, burst_bytes=512)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from simulator.isa import Box, DmaGather, DmaLoad, DmaStore, DramTensor, Program
from simulator.layout import DramLayout, Piece, Region
from simulator.machine import DmaConfig, MachineConfig

__all__ = ["DmaTotals", "Transfer", "descriptor_count", "descriptor_faults", "element_offsets", "physical_shape",
           "pieces", "program_totals", "strided_dims", "transfer"]


@dataclass(frozen=True, slots=True)
class Transfer:
    """One box's transfer: contiguous runs, descriptors, payload bytes, and bytes rounded up to whole bursts per run."""

    runs: int
    descriptors: int
    payload_bytes: int
    burst_bytes: int


def strided_dims(shape: tuple[int, ...], region: Region) -> tuple[int, list[tuple[int, int]], int]:
    """(run elements, [(extent, stride)] of the outer dimensions the region repeats its run over, outermost first,
    base offset) of a region of a row-major array of `shape`, strides and offsets in elements. Two neighbouring
    dimensions merge when the inner one's repeats are one stride apart from the outer one's.

    >>> strided_dims((4, 5, 6), ((0, 0, 0), (2, 3, 4)))  # runs of 4, over 3 rows (stride 6) of 2 planes (30)
    (4, [(2, 30), (3, 6)], 0)
    >>> strided_dims((4, 5, 6), ((1, 0, 0), (3, 5, 4)))  # the planes' rows follow on: 10 rows of stride 6
    (4, [(10, 6)], 30)
    """
    start, stop = region
    extents = [b - a for a, b in zip(start, stop, strict=True)]
    axis = len(shape) - 1
    while axis > 0 and extents[axis] == shape[axis]:
        axis -= 1
    strides = [math.prod(shape[a + 1:]) for a in range(len(shape))]
    base = sum(s * st for s, st in zip(start, strides, strict=True))
    run = math.prod(extents[axis:]) if shape else 1
    dims: list[tuple[int, int]] = []
    for outer in range(axis):
        if extents[outer] == 1:
            continue
        if dims and dims[-1][1] == extents[outer] * strides[outer]:
            dims[-1] = (dims[-1][0] * extents[outer], strides[outer])
        else:
            dims.append((extents[outer], strides[outer]))
    return run, dims, base


def descriptor_count(shape: tuple[int, ...], region: Region, descriptor_dims: int) -> int:
    """Descriptors that move a region of a row-major array: the repeats of the outer strided dimensions that one
    descriptor (a run and `descriptor_dims - 1` strided dimensions) cannot hold.

    >>> descriptor_count((4, 5, 6), ((0, 0, 0), (2, 3, 4)), 2)  # run x 3 rows per descriptor, 2 of them
    2
    """
    _, dims, _ = strided_dims(shape, region)
    return math.prod(extent for extent, _ in dims[:max(0, len(dims) - (descriptor_dims - 1))])


def physical_shape(tensor: DramTensor) -> tuple[int, ...]:
    """The shape of the array DRAM holds for the tensor: its own without a layout."""
    return _physical(tensor.shape, tensor.layout)


def _physical(shape: tuple[int, ...], layout: DramLayout | None) -> tuple[int, ...]:
    return shape if layout is None else layout.physical_shape(shape)


def pieces(tensor: DramTensor, box: Box) -> list[Piece]:
    """The parts of `box` that are each one box of the tensor's physical array (one part without a layout)."""
    return _pieces(tensor.shape, tensor.layout, (box.start, box.stop))


def _pieces(shape: tuple[int, ...], layout: DramLayout | None, region: Region) -> list[Piece]:
    return [Piece(region, region)] if layout is None else layout.pieces(shape, region)


def transfer(tensor: DramTensor, box: Box, burst_bytes: int, descriptor_dims: int) -> Transfer:
    """Runs, descriptors and bytes of a DMA of `box` under the tensor's layout (see the module docstring)."""
    return _transfer(tensor.shape, tensor.layout, tensor.elem_bytes, box.start, box.stop, burst_bytes,
                     descriptor_dims)


@functools.lru_cache(maxsize=1 << 16)
def _transfer(shape: tuple[int, ...], layout: DramLayout | None, elem_bytes: int, start: tuple[int, ...],
              stop: tuple[int, ...], burst_bytes: int, descriptor_dims: int) -> Transfer:
    physical = _physical(shape, layout)
    runs = descriptors = payload = burst = 0
    for piece in _pieces(shape, layout, (start, stop)):
        run, dims, _ = strided_dims(physical, piece.physical)
        count = math.prod(extent for extent, _ in dims)
        run_bytes = run * elem_bytes
        runs += count
        descriptors += math.prod(extent for extent, _ in dims[:max(0, len(dims) - (descriptor_dims - 1))])
        payload += count * run_bytes
        burst += count * -(-run_bytes // burst_bytes) * burst_bytes
    return Transfer(runs, descriptors, payload, burst)


def element_offsets(physical_shape: tuple[int, ...], region: Region, descriptor_dims: int) -> np.ndarray:
    """The flat offsets (elements) of a region of a row-major array, in the region's row-major order, built as the
    DMA engine walks them: each descriptor's base plus its own pattern (a run over up to `descriptor_dims - 1`
    strided dimensions).

    >>> element_offsets((4, 6), ((1, 2), (3, 4)), 1).tolist()  # two runs of 2, at 8 and 14
    [8, 9, 14, 15]
    """
    run, dims, base = strided_dims(physical_shape, region)
    held = len(dims) - max(0, len(dims) - (descriptor_dims - 1))
    outer, inner = dims[:len(dims) - held], dims[len(dims) - held:]
    pattern = np.arange(run, dtype=np.int64)  # one descriptor: the run, repeated over its strided dims
    for extent, stride in reversed(inner):
        pattern = (np.arange(extent, dtype=np.int64)[:, None] * stride + pattern[None, :]).reshape(-1)
    bases = np.array([base], dtype=np.int64)  # every descriptor's start: the repeats of the outer dims
    for extent, stride in outer:
        bases = (bases[:, None] + np.arange(extent, dtype=np.int64)[None, :] * stride).reshape(-1)
    return (bases[:, None] + pattern[None, :]).reshape(-1)


def descriptor_faults(tensor: DramTensor, box: Box, descriptor_dims: int) -> str | None:
    """Why the descriptors of a box would not move it (one outside the tensor's bytes, or not covering the box
    exactly), or None; a box outside the tensor's shape, or a layout that cannot hold the tensor, is a fault too.

    >>> from simulator.layout import DramLayout
    >>> x = DramTensor("x", (4, 6), "float32", 4, "intermediate", DramLayout((1, 0), (2, 3)))
    >>> descriptor_faults(x, Box((0, 0), (4, 6)), 2) is None
    True
    >>> descriptor_faults(x, Box((2, 0), (5, 6)), 2)
    'box [2:5, 0:6] runs outside x[4, 6] under layout order [1, 0] block [2, 3]'
    """
    where = (f"box [{', '.join(f'{a}:{b}' for a, b in zip(box.start, box.stop, strict=True))}] runs outside "
             f"{tensor.name}{list(tensor.shape)}")
    if tensor.layout is not None:
        where += f" under layout order {list(tensor.layout.order)} block {list(tensor.layout.block)}"
        problem = tensor.layout.check(tensor.shape)
        if problem:
            return f"{tensor.name}: {problem}"
    if len(box.start) != len(tensor.shape) or min(box.start, default=0) < 0 or any(
            b > d for b, d in zip(box.stop, tensor.shape, strict=True)):
        return where
    physical, size, moved = physical_shape(tensor), math.prod(tensor.shape), 0
    for piece in pieces(tensor, box):
        run, dims, base = strided_dims(physical, piece.physical)
        last = base + run - 1 + sum((extent - 1) * stride for extent, stride in dims)
        if base < 0 or last >= size:
            return where
        moved += run * math.prod(extent for extent, _ in dims)
    if moved != box.numel:
        return f"the descriptors of box {list(box.start)}..{list(box.stop)} move {moved} elements, not {box.numel}"
    return None


@dataclass(frozen=True, slots=True)
class DmaTotals:
    """A program's DMA work: transfers, contiguous runs, descriptors, payload and burst-rounded bytes."""

    transfers: int
    runs: int
    descriptors: int
    payload_bytes: int
    burst_bytes: int

    def descriptor_cycles(self, dma: DmaConfig) -> int:
        """Cycles the descriptor stages spend on them."""
        return self.descriptors * dma.descriptor_cycles

    def byte_cycles(self, machine: MachineConfig) -> float:
        """Cycles the burst-rounded bytes take at the rate one queue moves them alone."""
        return self.burst_bytes / min(machine.dma.engine_bandwidth_bytes_per_cycle,
                                      machine.dram.bandwidth_bytes_per_cycle)


def program_totals(program: Program, machine: MachineConfig) -> DmaTotals:
    """Sum of every DMA of the program, counted as the timing model charges them (gathers row by row).

    >>> from simulator.machine_file import load_machine
    >>> from simulator.isa import DmaLoad
    >>> x = DramTensor("x", (4, 6), "float32", 4, "input")
    >>> load = DmaLoad(0, (), 0, "x", Box((0, 0), (4, 3)), "b", (0, 0))
    >>> program_totals(Program("m", "s", "edge-npu", (x,), (), (load,)), load_machine("edge-npu"))
    DmaTotals(transfers=1, runs=4, descriptors=1, payload_bytes=48, burst_bytes=256)
    """
    dma, tensors = machine.dma, {tensor.name: tensor for tensor in program.tensors}
    transfers = runs = count = payload = burst = 0
    for instruction in program.instructions:
        if isinstance(instruction, DmaLoad | DmaStore):
            moved = transfer(tensors[instruction.tensor], instruction.box, dma.burst_bytes, dma.descriptor_dims)
            rows = 1
        elif isinstance(instruction, DmaGather):  # every row at its own address, as in simulator.timing
            moved = transfer(tensors[instruction.table], instruction.row_box, dma.burst_bytes, dma.descriptor_dims)
            rows = instruction.rows
        else:
            continue
        transfers += 1
        runs += rows * moved.runs
        count += rows * moved.descriptors
        payload += rows * moved.payload_bytes
        burst += rows * moved.burst_bytes
    return DmaTotals(transfers, runs, count, payload, burst)
