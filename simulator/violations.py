"""What the verifier reports: a Violation of one kind, with a message that names the instruction, buffer or tensor.

Kinds, from the shape of the program to its dataflow:

- name: an unknown or duplicate buffer or tensor name (an instruction naming one is otherwise skipped)
- bad-dep: a dep on a later or missing instruction, or an id that is not its position (isa refuses these too)
- queue: a DMA queue index outside the machine's engines
- alignment: a buffer offset that is not a multiple of the scratchpad alignment
- capacity: a buffer running past the end of its partitions (rows take ceil(rows / P) slots of a row each)
- bounds: a box placed outside its buffer, a box outside its tensor, or ranks that differ; a gather whose window
  does not span its axis, or whose indices are not integers
- elem-bytes: a tensor and the buffer holding it disagree on the element size
- read-only: a DmaStore into a model input or constant
- not-resident: a read (Compute operand, DmaStore) of a buffer region that does not hold exactly that tensor box:
  never written there, released since, or holding another tensor or box
- missing-dep: the region holds the box, but the instruction that wrote it does not happen-before the read
- write-hazard: a write over data that an earlier reader, not ordered before the write, may still be reading (WAR),
  or over different data whose writer is not ordered before it (WAW)
- early-release: a Release that does not wait for every earlier read and write of its buffer since its last Release
- overlap: a buffer written while another buffer sharing its bytes is live: the other was not released before in
  program order, or its Release does not happen-before the write
- dram-not-ready: a DmaLoad of an output or intermediate tensor box that the stores happening before it do not cover
- output-not-stored: a model output whose elements the DmaStores do not all cover
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from simulator.isa import Compute, DmaGather, DmaLoad, DmaStore, Instruction

Kind = Literal["name", "bad-dep", "queue", "alignment", "capacity", "bounds", "elem-bytes", "read-only",
               "not-resident", "missing-dep", "write-hazard", "early-release", "overlap", "dram-not-ready",
               "output-not-stored"]


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason a program is illegal; `instruction` is None for a fault of a buffer or of the program as a whole."""

    instruction: int | None
    kind: Kind
    message: str


def label(instruction: Instruction) -> str:
    """How messages name an instruction: kind, id, and the op it serves.

    >>> from simulator.isa import Release
    >>> label(Release(7, (), "x"))
    'release 7'
    """
    if isinstance(instruction, Compute):
        return f"compute {instruction.id} ({instruction.op_type} {instruction.node})"
    if isinstance(instruction, DmaGather):
        return f"gather {instruction.id}" + (f" ({instruction.op})" if instruction.op else "")
    if isinstance(instruction, DmaLoad | DmaStore):
        kind = "load" if isinstance(instruction, DmaLoad) else "store"
        return f"{kind} {instruction.id}" + (f" ({instruction.op})" if instruction.op else "")
    return f"release {instruction.id}"
