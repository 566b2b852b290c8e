"""The program: the contract between the planner and the simulator.

A Program names the DRAM tensors it touches, the scratchpad buffers it uses (each with a fixed address), and a list of
instructions. Every instruction lists the ids of the instructions it waits for; nothing else orders them, except that
each compute engine runs its own instructions one at a time, in program order. DMA queues issue in program order but
keep several transfers in flight, so a load is known to have landed only through a dependency on it.

Layout in the scratchpad: a buffer holds a box of one tensor at a time, stored row-major in the order of its
`layout` (a permutation of the tensor's axes). The first axis of that order maps onto partitions, as in a NeuronCore
SBUF: row r lives in partition r % P, slot r // P, and the buffer takes bytes [offset, offset + partition_bytes) of
each partition it uses.

This module is the IR alone; `simulator.plan_file` writes a Program to JSON (the plan file, with its JSON Schema) and
reads it back to an identical Program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from simulator.layout import DramLayout

ENGINES = ("tensor", "vector")
TENSOR_ROLES = ("input", "constant", "output", "intermediate")


@dataclass(frozen=True, slots=True)
class Box:
    """A half-open box of tensor coordinates: start <= index < stop on every axis.

    >>> Box((0, 2), (1, 5)).shape
    (1, 3)
    """

    start: tuple[int, ...]
    stop: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.start) != len(self.stop) or any(a >= b for a, b in zip(self.start, self.stop, strict=True)):
            raise ValueError(f"box {list(self.start)}..{list(self.stop)} is empty or malformed")

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.start, self.stop, strict=True))

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @classmethod
    def whole(cls, shape: tuple[int, ...]) -> Box:
        return cls((0,) * len(shape), tuple(shape))


@dataclass(frozen=True, slots=True)
class DramTensor:
    """A tensor in DRAM. `dtype` is the numpy dtype of its values; `elem_bytes` its element size as planned;
    `layout` the order of its elements in DRAM (`simulator.layout`), None for ONNX's row-major order. Boxes of it are
    always in its logical (ONNX) coordinates, whatever its layout."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    elem_bytes: int
    role: str
    layout: DramLayout | None = None

    def __post_init__(self) -> None:
        if self.role not in TENSOR_ROLES:
            raise ValueError(f"tensor {self.name}: role {self.role!r} is not one of {TENSOR_ROLES}")
        if self.layout is not None and (problem := self.layout.check(self.shape)):
            raise ValueError(f"tensor {self.name}: {problem}")

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.elem_bytes


@dataclass(frozen=True, slots=True)
class Buffer:
    """A scratchpad allocation: `shape` elements of `elem_bytes`, in `layout` order, at byte `offset` of each
    partition it spans."""

    name: str
    offset: int
    shape: tuple[int, ...]
    layout: tuple[int, ...]
    elem_bytes: int

    def __post_init__(self) -> None:
        if sorted(self.layout) != list(range(len(self.shape))):
            raise ValueError(f"buffer {self.name}: layout {self.layout} is not a permutation of its axes")
        if self.offset < 0 or self.elem_bytes <= 0 or any(d <= 0 for d in self.shape):
            raise ValueError(f"buffer {self.name}: offset, element size and shape must be positive")

    @property
    def rows(self) -> int:
        """Extent of the axis that maps onto partitions."""
        return self.shape[self.layout[0]] if self.shape else 1

    def partition_bytes(self, partitions: int) -> int:
        """Bytes the buffer takes in each partition it spans."""
        row_bytes = math.prod(self.shape[axis] for axis in self.layout[1:]) * self.elem_bytes
        return -(-self.rows // partitions) * row_bytes

    def partitions_used(self, partitions: int) -> int:
        return min(self.rows, partitions)


@dataclass(frozen=True, slots=True)
class Operand:
    """`box` of `tensor`, held in `buffer` from element `at` on (in the buffer's logical axis order).

    `view` is the shape the op sees when it reads a row-major view (Reshape, Flatten...) of the tensor; () when it
    reads the tensor as it is.
    """

    tensor: str
    box: Box
    buffer: str
    at: tuple[int, ...]
    view: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Param:
    """A small constant input the op takes by value (a Clip bound, Slice starts, a Resize scale)."""

    values: tuple[float | int, ...]
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True, slots=True)
class Unread:
    """An input the op takes but this tile reads none of (another part's input of a Concat): it is fed as poison."""

    tensor: str
    view: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class DmaLoad:
    """Copy `box` of a DRAM tensor into `buffer` from element `at` on. `op` names the op it serves (for stats)."""

    id: int
    deps: tuple[int, ...]
    queue: int
    tensor: str
    box: Box
    buffer: str
    at: tuple[int, ...]
    op: str = ""


@dataclass(frozen=True, slots=True)
class DmaStore:
    """Copy the region of `buffer` from `at` on into `box` of a DRAM tensor."""

    id: int
    deps: tuple[int, ...]
    queue: int
    buffer: str
    at: tuple[int, ...]
    tensor: str
    box: Box
    op: str = ""


@dataclass(frozen=True, slots=True)
class DmaGather:
    """Indirect DMA: rows of a DRAM table, named by index values that are already in the scratchpad, into a buffer.

    `indices` is a box of an integer tensor held in a buffer; `window` is a box of `table` that spans the whole of
    `axis` (the rows an index may name) and picks the slab of every row that is moved. For each index element j,
    in row-major order of its box, the slab `table[window with axis = idx[j]]` lands in `output` (a box of the
    gathered tensor in a buffer) at position j of its `axis .. axis + rank(indices)` axes, so the output box has the
    shape `window.shape[:axis] + indices.box.shape + window.shape[axis + 1:]`. Indices with a `view` are a whole
    tensor read as that shape (row-major), and the view's shape stands for the box's. A negative index counts from
    the end of the axis, as in ONNX Gather; one outside the axis is a fault when the program runs.

    >>> g = DmaGather(0, (), 0, "emb", 0, Box((0, 0), (100, 8)), Operand("ids", Box((0, 0), (1, 4)), "b", (0, 0)),
    ...               Operand("y", Box((0, 0, 0), (1, 4, 8)), "o", (0, 0, 0)))
    >>> g.rows, g.row_box.shape
    (4, (1, 8))
    """

    id: int
    deps: tuple[int, ...]
    queue: int
    table: str
    axis: int
    window: Box
    indices: Operand
    output: Operand
    op: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.axis < len(self.window.start):
            raise ValueError(f"instruction {self.id}: axis {self.axis} is outside the window's rank")
        expected = (*self.window.shape[:self.axis], *self.index_shape, *self.window.shape[self.axis + 1:])
        if self.output.box.shape != expected:
            raise ValueError(f"instruction {self.id}: output box {list(self.output.box.shape)} is not the gathered "
                             f"shape {list(expected)}")

    @property
    def index_shape(self) -> tuple[int, ...]:
        """The indices as the gather sees them: their view, when they are a reshaped view of a whole tensor."""
        return self.indices.view or self.indices.box.shape

    @property
    def rows(self) -> int:
        """Index elements, each naming one row."""
        return self.indices.box.numel

    @property
    def row_box(self) -> Box:
        """The slab of one row (of row 0, for its shape and runs)."""
        axis = self.axis
        return Box((*self.window.start[:axis], 0, *self.window.start[axis + 1:]),
                   (*self.window.stop[:axis], 1, *self.window.stop[axis + 1:]))


@dataclass(frozen=True, slots=True)
class Compute:
    """One tile of one op: it writes `output` (a box of one of the op's outputs) from its input slots.

    `inputs` follows the ONNX node's input order; a slot is an Operand (read from the scratchpad), a Param, an
    Unread input, or None (an omitted optional input). `output_index` says which of the node's outputs is written.
    For tensor-engine tiles `mnk` gives the systolic shape: M rows streamed through, N output columns, K reduction
    length.

    A reduction split into slices (a conv's input channels, a matmul's k) runs as one Compute per slice:
    - `slices` lists (input slot, axis, start, stop): the op runs on those slices of its inputs only (a partial conv
      over some input channels is itself a conv on them), axes counted in the shape the op sees;
    - `accumulate` is the running partial sum, added to the result (None on the first slice);
    - `partial` says the output is itself a partial sum, more slices to come: it holds accumulator precision
      (its buffer's element size may exceed the tensor's) and is no final value.
    """

    id: int
    deps: tuple[int, ...]
    engine: str
    node: str
    op_type: str
    attrs: tuple[tuple[str, Any], ...]
    inputs: tuple[Operand | Param | Unread | None, ...]
    output: Operand
    output_index: int = 0
    macs: int = 0
    elem_ops: int = 0
    mnk: tuple[int, ...] = ()
    slices: tuple[tuple[int, int, int, int], ...] = ()
    accumulate: Operand | None = None
    partial: bool = False

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"instruction {self.id}: engine {self.engine!r} is not one of {ENGINES}")

    @property
    def operands(self) -> tuple[Operand, ...]:
        """Every region the compute reads: its input operands, then the partial sum it adds to."""
        found = tuple(slot for slot in self.inputs if isinstance(slot, Operand))
        return (*found, self.accumulate) if self.accumulate is not None else found


@dataclass(frozen=True, slots=True)
class Release:
    """The buffer's contents are dead from here on (the simulator poisons them)."""

    id: int
    deps: tuple[int, ...]
    buffer: str


Instruction = DmaLoad | DmaStore | DmaGather | Compute | Release


@dataclass(frozen=True, slots=True)
class Program:
    """A whole plan: instruction ids are their positions in `instructions`.

    `dtype` is the planning dtype (it picks the tensor engine's MACs per cycle); `opset` is the model's ONNX opset,
    which the functional simulator needs to run each op; `outputs` are the model outputs, which must be stored;
    `compulsory_bytes` carries the model's traffic bound, so that a plan file alone can be compared with it.
    """

    model: str
    strategy: str
    machine: str
    tensors: tuple[DramTensor, ...]
    buffers: tuple[Buffer, ...]
    instructions: tuple[Instruction, ...]
    outputs: tuple[str, ...] = field(default=())
    dtype: str = "fp32"
    opset: int = 17
    compulsory_bytes: int = 0  # the model's lower bound on DRAM traffic, as the planner computed it (0: not given)

    def __post_init__(self) -> None:
        for position, instruction in enumerate(self.instructions):
            if instruction.id != position:
                raise ValueError(f"instruction at position {position} has id {instruction.id}")
            if any(not 0 <= dep < position for dep in instruction.deps):
                raise ValueError(f"instruction {position} waits for {instruction.deps}: deps must come earlier")
