"""The verifier's first half: each name, buffer, id and placement on its own, before any question of order.

A buffer must be aligned and fit its partitions; every name must be declared once; every tensor box placed in a
buffer must match ranks, lie inside both the tensor and the buffer, and agree on the element size; every DMA must use
one of the machine's queues, and under a tensor's DRAM layout its descriptors (`simulator.dma`, up to the machine's
`dma.descriptor_dims` dims each) must land inside the tensor and move exactly its box.
Instructions whose names or ranks are wrong are left out of the dataflow walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.dma import descriptor_faults
from simulator.isa import Box, Buffer, Compute, DmaGather, DmaLoad, DmaStore, DramTensor, Instruction, Program, Unread
from simulator.machine import MachineConfig
from simulator.regions import describe
from simulator.violations import Kind, Violation, label


@dataclass(slots=True)
class Wellformed:
    """The checks' findings, and what the dataflow walk needs from them."""

    tensors: dict[str, DramTensor] = field(default_factory=dict)   # the first declaration of each name
    buffers: dict[str, Buffer] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    skipped: set[int] = field(default_factory=set)  # instructions the walk cannot follow (a bad name or rank)
    ordered: bool = True                            # ids are positions and deps point back: happens-before exists

    def report(self, instruction: int | None, kind: Kind, message: str) -> None:
        self.violations.append(Violation(instruction, kind, message))


def check_wellformed(program: Program, machine: MachineConfig) -> Wellformed:
    """Names, buffers, ids and placements of a program, each on its own.

    >>> from simulator.machine_file import load_machine
    >>> program = Program("m", "by-hand", "edge-npu", (), (Buffer("b", 4, (1,), (0,), 4),), ())
    >>> [v.message for v in check_wellformed(program, load_machine("edge-npu")).violations]
    ['buffer b: offset 4 is not a multiple of the 32-byte alignment']
    """
    found = Wellformed()
    _declarations(program, found)
    for buffer in found.buffers.values():
        _fits(buffer, machine, found)
    for position, instruction in enumerate(program.instructions):
        deps = instruction.deps
        if instruction.id != position or (deps and (min(deps) < 0 or max(deps) >= position)):
            found.ordered = False
            found.report(position, "bad-dep", f"{label(instruction)} at position {position} waits for "
                         f"{list(instruction.deps)}: ids must be positions and deps must come earlier")
        if not _instruction(instruction, machine, found):
            found.skipped.add(position)
    return found


def _declarations(program: Program, found: Wellformed) -> None:
    for tensor in program.tensors:
        if tensor.name in found.tensors:
            found.report(None, "name", f"tensor {tensor.name} is declared twice")
        found.tensors.setdefault(tensor.name, tensor)
    for buffer in program.buffers:
        if buffer.name in found.buffers:
            found.report(None, "name", f"buffer {buffer.name} is declared twice")
        found.buffers.setdefault(buffer.name, buffer)
    for name in program.outputs:
        if name not in found.tensors:
            found.report(None, "name", f"model output {name} is not a tensor of the program; tensors: "
                         f"{sorted(found.tensors)}")


def _fits(buffer: Buffer, machine: MachineConfig, found: Wellformed) -> None:
    pad = machine.scratchpad
    if buffer.offset % pad.alignment_bytes:
        found.report(None, "alignment", f"buffer {buffer.name}: offset {buffer.offset} is not a multiple of the "
                     f"{pad.alignment_bytes}-byte alignment")
    used = buffer.partition_bytes(pad.partitions)
    if buffer.offset + used > pad.partition_bytes:
        slots = -(-buffer.rows // pad.partitions)
        found.report(None, "capacity", f"buffer {buffer.name}: {buffer.rows} rows over {pad.partitions} partitions "
                     f"take {slots} slot(s) of {used // slots} bytes, so bytes [{buffer.offset}, "
                     f"{buffer.offset + used}) of each partition, past its {pad.partition_bytes} bytes")


def _instruction(instruction: Instruction, machine: MachineConfig, found: Wellformed) -> bool:
    """Check one instruction; False if the dataflow walk cannot follow it."""
    if isinstance(instruction, Compute):
        for slot in instruction.inputs:
            if isinstance(slot, Unread) and slot.tensor not in found.tensors:
                found.report(instruction.id, "name", f"{label(instruction)}: unknown tensor {slot.tensor}; "
                             f"tensors: {sorted(found.tensors)}")
        places = [*instruction.operands, instruction.output]
        # a partial sum lives at accumulator precision: its buffer may have wider elements than its tensor
        wide = {id(o) for o in (instruction.accumulate, instruction.output if instruction.partial else None) if o}
        return all([_place(instruction, o.tensor, o.box, o.buffer, o.at, found, id(o) in wide) for o in places])
    if isinstance(instruction, DmaGather):
        return _gather(instruction, machine, found)
    if isinstance(instruction, DmaLoad | DmaStore):
        if not 0 <= instruction.queue < machine.dma.engines:
            found.report(instruction.id, "queue", f"{label(instruction)}: queue {instruction.queue} is not one of "
                         f"the machine's {machine.dma.engines} DMA queues")
        tensor = found.tensors.get(instruction.tensor)
        if isinstance(instruction, DmaStore) and tensor is not None and tensor.role in ("input", "constant"):
            found.report(instruction.id, "read-only", f"{label(instruction)} writes into {tensor.role} "
                         f"{tensor.name}, which the program may only read")
        placed = _place(instruction, instruction.tensor, instruction.box, instruction.buffer, instruction.at, found)
        if placed and tensor is not None and tensor.layout is not None and _inside(instruction.box, tensor):
            # under a layout the box moves as pieces: each descriptor must land inside the tensor, covering the box
            fault = descriptor_faults(tensor, instruction.box, machine.dma.descriptor_dims)
            if fault:
                found.report(instruction.id, "bounds", f"{label(instruction)}: {fault}")
        return placed
    if instruction.buffer not in found.buffers:
        found.report(instruction.id, "name", f"{label(instruction)}: unknown buffer {instruction.buffer}; buffers: "
                     f"{sorted(found.buffers)}")
        return False
    return True


def _gather(gather: DmaGather, machine: MachineConfig, found: Wellformed) -> bool:
    """An indirect DMA: its queue, integer indices, a window inside the table spanning the gathered axis, and its
    two placements."""
    if not 0 <= gather.queue < machine.dma.engines:
        found.report(gather.id, "queue", f"{label(gather)}: queue {gather.queue} is not one of the machine's "
                     f"{machine.dma.engines} DMA queues")
    table, indices = found.tensors.get(gather.table), found.tensors.get(gather.indices.tensor)
    if table is None:
        found.report(gather.id, "name", f"{label(gather)}: unknown tensor {gather.table}; tensors: "
                     f"{sorted(found.tensors)}")
        return False
    if table.layout is not None:  # the engine steps from row to row of a row-major table (simulator.timing)
        found.report(gather.id, "bounds", f"{label(gather)}: table {table.name} has a DRAM layout; an indirect DMA "
                     f"reads its rows from a table in ONNX's layout only")
    window = gather.window
    if len(window.start) != len(table.shape) or min(window.start) < 0 or any(
            stop > extent for stop, extent in zip(window.stop, table.shape, strict=True)):
        found.report(gather.id, "bounds", f"{label(gather)}: window {list(window.start)}..{list(window.stop)} is "
                     f"outside table {table.name}{list(table.shape)}")
        return False
    if (window.start[gather.axis], window.stop[gather.axis]) != (0, table.shape[gather.axis]):
        found.report(gather.id, "bounds", f"{label(gather)}: window spans {window.start[gather.axis]}.."
                     f"{window.stop[gather.axis]} of axis {gather.axis}, not every row of {table.name}")
    if indices is not None and gather.indices.view and gather.indices.box.shape != indices.shape:
        found.report(gather.id, "bounds", f"{label(gather)}: indices {indices.name} are read as the view "
                     f"{list(gather.indices.view)}, so their box must be the whole tensor {list(indices.shape)}")
    if indices is not None and indices.dtype not in ("int32", "int64"):
        found.report(gather.id, "bounds", f"{label(gather)}: indices {indices.name} are {indices.dtype}, not int32 "
                     "or int64")
    if table.elem_bytes != found.tensors.get(gather.output.tensor, table).elem_bytes:
        found.report(gather.id, "elem-bytes", f"{label(gather)}: table {table.name} and output "
                     f"{gather.output.tensor} differ in element size")
    places = [(o.tensor, o.box, o.buffer, o.at) for o in (gather.indices, gather.output)]
    return all([_place(gather, *place, found) for place in places])


def _inside(box: Box, tensor: DramTensor) -> bool:
    return len(box.start) == len(tensor.shape) and min(box.start, default=0) >= 0 and all(
        stop <= extent for stop, extent in zip(box.stop, tensor.shape, strict=True))


def _place(instruction: Instruction, tensor_name: str, box: Box, buffer_name: str, at: tuple[int, ...],
           found: Wellformed, wide: bool = False) -> bool:
    """Names, ranks, bounds and element sizes of one tensor box placed in a buffer; False if the walk cannot follow
    it."""
    tensor, buffer = found.tensors.get(tensor_name), found.buffers.get(buffer_name)
    if tensor is None:
        found.report(instruction.id, "name", f"{label(instruction)}: unknown tensor {tensor_name}; tensors: "
                     f"{sorted(found.tensors)}")
    if buffer is None:
        found.report(instruction.id, "name", f"{label(instruction)}: unknown buffer {buffer_name}; buffers: "
                     f"{sorted(found.buffers)}")
    if tensor is None or buffer is None:
        return False

    def where() -> str:
        return f"{label(instruction)}: {describe(tensor_name, (box.start, box.stop))} in buffer {buffer_name}"

    if not len(box.start) == len(at) == len(buffer.shape) == len(tensor.shape):
        found.report(instruction.id, "bounds", f"{where()} at {list(at)}: ranks differ from tensor "
                     f"{list(tensor.shape)} and buffer {list(buffer.shape)}")
        return False
    if min(at, default=0) < 0 or any(a + stop - start > extent for a, start, stop, extent
                                     in zip(at, box.start, box.stop, buffer.shape, strict=True)):
        found.report(instruction.id, "bounds", f"{where()}: shape {list(box.shape)} at {list(at)} runs outside "
                     f"the buffer's shape {list(buffer.shape)}")
    if min(box.start, default=0) < 0 or any(stop > extent for stop, extent in zip(box.stop, tensor.shape,
                                                                                    strict=True)):
        found.report(instruction.id, "bounds", f"{where()}: the box runs outside the tensor's shape "
                     f"{list(tensor.shape)}")
    if tensor.elem_bytes != buffer.elem_bytes and not (wide and buffer.elem_bytes > tensor.elem_bytes):
        found.report(instruction.id, "elem-bytes", f"{where()}: the tensor has {tensor.elem_bytes}-byte elements, "
                     f"the buffer {buffer.elem_bytes}-byte ones")
    return True
