"""Where a program's data lives: DRAM tensors, scratchpad buffers, boxes of them, and the operands a compute reads.

Layout in the scratchpad: a buffer holds a box of one tensor at a time, stored row-major in the order of its
`layout` (a permutation of the tensor's axes). The first axis of that order maps onto partitions, as in a NeuronCore
SBUF: row r lives in partition r % P, slot r // P, and the buffer takes bytes [offset, offset + partition_bytes) of
each partition it uses.

The instructions that move and compute them are in `simulator.isa`, which re-exports these.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from simulator.layout import DramLayout

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
        if len(self.start) != len(self.stop) or not all(map(operator.lt, self.start, self.stop)):
            raise ValueError(f"box {list(self.start)}..{list(self.stop)} is empty or malformed")

    @property
    def shape(self) -> tuple[int, ...]:
        # map over operator.sub: the planner's search asks a million boxes their shape (a generator over a strict
        # zip took 13% of resnet50's plan on inferentia2-core); __post_init__ checked the lengths match
        return tuple(map(operator.sub, self.stop, self.start))

    @property
    def numel(self) -> int:
        return math.prod(map(operator.sub, self.stop, self.start))

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
