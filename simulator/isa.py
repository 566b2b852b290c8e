"""The program: the contract between the planner and the simulator.

A Program names the DRAM tensors it touches, the scratchpad buffers it uses (each with a fixed address), and a list of
instructions. Every instruction lists the ids of the instructions it waits for; nothing else orders them, except that
each compute engine runs its own instructions one at a time, in program order. DMA queues issue in program order but
keep several transfers in flight, so a load is known to have landed only through a dependency on it.

The tensors, buffers, boxes and operands instructions name are in `simulator.places` (re-exported here); how a
buffer lays out in the scratchpad is described there.

This module is the IR alone; `simulator.plan_file` writes a Program to JSON (the plan file, with its JSON Schema) and
reads it back to an identical Program.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulator.places import TENSOR_ROLES, Box, Buffer, DramTensor, Operand, Param, Unread

__all__ = ["ENGINES", "TENSOR_ROLES", "Box", "Buffer", "Compute", "DmaGather", "DmaLoad", "DmaStore", "DramTensor",
           "Instruction", "Operand", "Param", "Program", "Release", "Unread"]

ENGINES = ("tensor", "vector")


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
