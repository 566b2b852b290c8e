"""Tiles to a Program: the builder every strategy emits through.

It hands out DMA queues round-robin (a large transfer goes out in one slab per queue: `planner.staging.queue_split`),
records each buffer's lifetime, adds the dependencies the data needs (a load of a tensor waits for the stores that
wrote that part of it), allocates addresses from lifetimes, and then makes each buffer's first write wait for the
release of every buffer that held its addresses before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from planner.inspect import totals
from planner.staging.alloc import Lifetime, allocate, buffer_bytes, choose_layout
from planner.staging.layout import choose_layouts
from planner.staging.queue_split import queue_parts
from planner.staging.stores import StoreIndex
from planner.stmt import LoweredGraph
from simulator.isa import (
    Box,
    Buffer,
    Compute,
    DmaGather,
    DmaLoad,
    DmaStore,
    DramTensor,
    Instruction,
    Operand,
    Param,
    Program,
    Release,
    Unread,
)
from simulator.machine import MachineConfig


@dataclass(frozen=True, slots=True)
class ReductionSlice:
    """How one Compute takes part in a split reduction (see `simulator.isa.Compute`): the input slices it runs on,
    the input slots it leaves out (a bias, on all but the first slice), the buffer holding the running sum it adds
    to (None on the first slice), and whether its output is still partial."""

    slices: tuple[tuple[int, int, int, int], ...]
    dropped: tuple[int, ...] = ()
    running: str | None = None
    partial: bool = True


def boxes_meet(first: Box, second: Box) -> bool:
    return all(a < d and c < b for a, b, c, d in zip(first.start, first.stop, second.start, second.stop, strict=True))


@dataclass
class _BufferInfo:
    shape: tuple[int, ...]
    layout: tuple[int, ...]
    elem_bytes: int
    partition_bytes: int
    pinned: int | None = None
    first: int = -1
    last: int = -1
    writes: list[int] = field(default_factory=list)


class ProgramBuilder:
    """Collects instructions for one program; `build()` allocates and freezes it."""

    def __init__(self, lowered: LoweredGraph, machine: MachineConfig, strategy: str) -> None:
        self.lowered, self.machine, self.strategy = lowered, machine, strategy
        self.graph = lowered.graph
        self.nodes = {node.name: node for node in self.graph.nodes}
        self._instructions: list[dict] = []
        self._buffers: dict[str, _BufferInfo] = {}
        self._stores = StoreIndex()
        self._next_queue = 0
        self._tensors: dict[str, None] = {}
        # Outputs to store: a model output that is a view of an input or constant is already in DRAM as it is.
        self.output_tensors = frozenset(lowered.base(name) for name in self.graph.outputs
                                        if self.graph.tensors[lowered.base(name)].kind == "activation")

    # -- buffers --------------------------------------------------------------------------------------------------
    def buffer(self, name: str, shape: tuple[int, ...], elem_bytes: int, pinned: int | None = None) -> str:
        """A buffer holding `shape` elements; `pinned` fixes its offset (else the allocator places it)."""
        layout, partition_bytes = choose_layout(shape, elem_bytes, self.machine.scratchpad.partitions)
        self._buffers[name] = _BufferInfo(shape, layout, elem_bytes, partition_bytes, pinned=pinned)
        return name

    def partition_bytes(self, shape: tuple[int, ...], elem_bytes: int) -> int:
        """Aligned bytes per partition a buffer of this shape takes."""
        return buffer_bytes(shape, elem_bytes, self.machine.scratchpad)

    def _use(self, buffer: str, instruction: int, writes: bool = False) -> None:
        info = self._buffers[buffer]
        if info.first < 0:
            info.first = instruction
        info.last = instruction
        if writes:
            info.writes.append(instruction)

    # -- instructions ---------------------------------------------------------------------------------------------
    def _emit(self, kind: type, deps: list[int], **fields: object) -> int:
        index = len(self._instructions)
        self._instructions.append({"kind": kind, "id": index, "deps": set(deps), **fields})
        return index

    def load(self, tensor: str, box: Box, buffer: str, deps: list[int], op: str,
             at: tuple[int, ...] | None = None) -> list[int]:
        """Load a box into a buffer (from element `at` on, 0 by default), split across DMA queues when it is
        large."""
        self._tensors[tensor] = None
        origin = at or (0,) * len(box.start)
        ids = []
        for part, offset in self._split(tensor, box):
            waits = self._stores.meeting(tensor, part)
            index = self._emit(DmaLoad, deps + waits, queue=self._queue(), tensor=tensor, box=part, buffer=buffer,
                               at=tuple(a + b for a, b in zip(origin, offset, strict=True)), op=op)
            self._use(buffer, index, writes=True)
            ids.append(index)
        return ids

    def store(self, buffer: str, tensor: str, box: Box, deps: list[int], op: str,
              at: tuple[int, ...] | None = None) -> list[int]:
        """Store a buffer's region (from element `at` on, 0 by default) into a box, split across DMA queues when it
        is large."""
        self._tensors[tensor] = None
        origin = at or (0,) * len(box.start)
        ids = []
        for part, offset in self._split(tensor, box):
            index = self._emit(DmaStore, deps, queue=self._queue(), buffer=buffer,
                               at=tuple(a + b for a, b in zip(origin, offset, strict=True)), tensor=tensor, box=part,
                               op=op)
            self._stores.add(tensor, part, index)
            self._use(buffer, index)
            ids.append(index)
        return ids

    def _queue(self) -> int:
        queue = self._next_queue
        self._next_queue = (queue + 1) % self.machine.dma.engines
        return queue

    def _split(self, tensor: str, box: Box) -> list[tuple[Box, tuple[int, ...]]]:
        # Each slab with its offset in the box (planner.staging.queue_split: one slab per queue when it is large).
        parts = queue_parts(box, self.graph.elem_bytes(tensor), self.machine.dma.engines)
        return [(part, tuple(a - b for a, b in zip(part.start, box.start, strict=True))) for part in parts]

    def compute(self, node_name: str, engine: str, reads: dict[str, tuple[Box, str, tuple[int, ...]]],
                output: tuple[str, Box, str, tuple[int, ...]], deps: list[int], macs: int, elem_ops: int,
                mnk: tuple[int, ...], split: ReductionSlice | None = None) -> int:
        """One tile of a node: `reads` maps base tensors to (box, buffer, position in the buffer); `output` is
        (tensor, box, buffer, position); `split` makes it one slice of a split reduction."""
        node = self.nodes[node_name]
        slots: list[Operand | Param | Unread | None] = []
        for name in node.inputs:
            base = self.lowered.base(name) if name else ""
            view = self.graph.tensors[name].shape if name and base != name else ()
            if not name:
                slots.append(None)
            elif base in reads:
                box, buffer, at = reads[base]
                slots.append(Operand(base, box, buffer, at, view))
            elif name in self.graph.values:
                value = np.asarray(self.graph.values[name])
                slots.append(Param(tuple(value.reshape(-1).tolist()), value.shape, str(value.dtype)))
            else:
                slots.append(Unread(base, view))
                self._tensors[base] = None  # declared, so the program names every tensor its slots mention
        tensor, box, buffer, out_at = output
        attrs = tuple(sorted((key, _plain(value)) for key, value in node.attrs.items()))
        extra: dict[str, object] = {}
        if split is not None:
            for dropped in split.dropped:  # the bias joins the first slice only
                slots[dropped] = None
            extra = {"slices": split.slices, "partial": split.partial, "accumulate": None if split.running is None
                     else Operand(tensor, box, split.running, (0,) * len(box.start))}
        index = self._emit(Compute, deps, engine=engine, node=node_name, op_type=node.op_type, attrs=attrs,
                           inputs=tuple(slots), output=Operand(tensor, box, buffer, out_at),
                           output_index=node.outputs.index(tensor), macs=macs, elem_ops=elem_ops, mnk=mnk, **extra)
        if split is not None and split.running is not None:
            self._use(split.running, index)
        for _, read_buffer, _ in reads.values():
            self._use(read_buffer, index)
        self._use(buffer, index, writes=True)
        self._tensors[tensor] = None
        return index

    def copy(self, tensor: str, box: Box, source: tuple[str, tuple[int, ...]], target: tuple[str, tuple[int, ...]],
             deps: list[int], op: str) -> int:
        """Copy `box` of `tensor` on chip, from (buffer, position) `source` to `target`: an Identity on the vector
        engine, one element op per element (a line buffer's carried rows, planner.staging.lines)."""
        index = self._emit(Compute, deps, engine="vector", node=op, op_type="Identity", attrs=(),
                           inputs=(Operand(tensor, box, *source),), output=Operand(tensor, box, *target),
                           output_index=0, macs=0, elem_ops=box.numel, mnk=())
        self._use(source[0], index)
        self._use(target[0], index, writes=True)
        self._tensors[tensor] = None
        return index

    def gather(self, node_name: str, table: str, axis: int, indices: tuple[str, Box, str, tuple[int, ...]],
               output: tuple[str, Box, str, tuple[int, ...]], deps: list[int], view: tuple[int, ...] = ()) -> int:
        """An indirect DMA: the rows of `table` named by `indices` (tensor, box, buffer, position; read as `view`
        when they are a reshaped view), for the output box (tensor, box, buffer, position) of a Gather; the window
        is the output box's slab of every row."""
        shape = self.graph.tensors[table].shape
        out_tensor, out_box, out_buffer, out_at = output
        index_rank = len(view or indices[1].start)
        window = Box((*out_box.start[:axis], 0, *out_box.start[axis + index_rank:]),
                     (*out_box.stop[:axis], shape[axis], *out_box.stop[axis + index_rank:]))
        waits = self._stores.meeting(table, window)
        self._tensors[table] = None
        self._tensors[indices[0]] = None
        self._tensors[out_tensor] = None
        index = self._emit(DmaGather, deps + waits, queue=self._queue(), table=table, axis=axis, window=window,
                           indices=Operand(*indices, view), output=Operand(out_tensor, out_box, out_buffer, out_at),
                           op=node_name)
        self._use(indices[2], index)
        self._use(out_buffer, index, writes=True)
        return index

    def release(self, buffer: str, deps: list[int]) -> int:
        index = self._emit(Release, deps, buffer=buffer)
        self._use(buffer, index)
        return index

    # -- the program ----------------------------------------------------------------------------------------------
    def lifetimes(self) -> list[Lifetime]:
        """The buffers used so far, with their bytes per partition and first and last instruction."""
        return [Lifetime(name, info.partition_bytes, info.first, info.last, info.pinned)
                for name, info in self._buffers.items() if info.first >= 0]

    def build(self) -> Program:
        sp = self.machine.scratchpad
        offsets = allocate(self.lifetimes(), sp.partition_bytes, sp.alignment_bytes, f"{self.graph.source}")
        self._wait_for_previous_holders(offsets)
        buffers = tuple(Buffer(name, offsets[name], info.shape, info.layout, info.elem_bytes)
                        for name, info in self._buffers.items() if name in offsets)
        instructions: list[Instruction] = []
        for fields in self._instructions:
            fields = dict(fields)
            kind = fields.pop("kind")
            fields["deps"] = tuple(sorted(fields["deps"]))
            instructions.append(kind(**fields))
        outputs = tuple(sorted(self.output_tensors, key=list(self.graph.tensors).index))
        for name in outputs:
            self._tensors[name] = None
        # intermediates get the DRAM layout in which their stored and loaded boxes move in the fewest descriptors
        tensors = choose_layouts([self._dram_tensor(name, outputs) for name in self._tensors], instructions,
                                 self.machine)
        return Program(self.graph.name, self.strategy, self.machine.name, tensors, buffers, tuple(instructions),
                       outputs, self.graph.planning_dtype or "fp32", self.graph.opset,
                       totals(self.lowered).compulsory_bytes)

    def _wait_for_previous_holders(self, offsets: dict[str, int]) -> None:
        # A buffer placed where others lived before must not be written until they are released. Only the latest
        # holder of each byte matters (its release already waits for the holders before it), so keep a map of
        # disjoint byte ranges to the release of whoever held them last.
        holders: list[tuple[int, int, int]] = []  # (start, end, last instruction of the holder), sorted
        for _, name in sorted((info.first, name) for name, info in self._buffers.items() if name in offsets):
            info = self._buffers[name]
            start, end = offsets[name], offsets[name] + info.partition_bytes
            kept: list[tuple[int, int, int]] = []
            for low, high, last in holders:
                if high <= start or end <= low:
                    kept.append((low, high, last))
                    continue
                for write in info.writes:  # every write, for a load split over queues writes in parts
                    self._instructions[write]["deps"].add(last)
                kept += [piece for piece in ((low, start, last), (end, high, last)) if piece[0] < piece[1]]
            holders = sorted([*kept, (start, end, info.last)])

    def _dram_tensor(self, name: str, outputs: tuple[str, ...]) -> DramTensor:
        tensor = self.graph.tensors[name]
        role = ("output" if name in outputs else "input" if tensor.kind == "input" else
                "constant" if tensor.kind == "constant" else "intermediate")
        dtype = str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)))
        return DramTensor(name, tensor.shape, dtype, self.graph.elem_bytes(name), role)


def _plain(value: object) -> object:
    """Attribute values as JSON-friendly Python (tuples, numbers, strings)."""
    if isinstance(value, np.ndarray):
        return tuple(value.reshape(-1).tolist())
    if isinstance(value, (tuple, list)):
        return tuple(_plain(item) for item in value)
    if isinstance(value, np.generic):
        return value.item()
    return value
