"""The order of a tensor's elements in DRAM: its layout, and how a box of it maps onto the bytes.

A `DramLayout` is a permutation of the tensor's axes, optionally blocked. Blocked with `block` (one extent per axis,
each dividing the axis), element `i` sits at outer index `i // block` and inner index `i % block` on every axis; DRAM
holds the outer indices in `order`, then the inner ones in `order`, row-major. So a `block` equal to the shape is the
plain permutation, and the identity order with no block is the ONNX (row-major) layout. The physical array of
`(outer..., inner...)` is what DMA descriptors walk.

A box of the tensor (its logical coordinates) maps onto one box of the physical array when it is whole blocks, or a
part of one block, on every axis; otherwise it splits into pieces (on each axis: a partial head block, whole blocks,
a partial tail block), each one box of the physical array.

>>> nhwc = DramLayout((0, 2, 3, 1))               # channels-last for an NCHW tensor
>>> nhwc.physical_shape((1, 8, 4, 4))
(1, 1, 1, 1, 1, 4, 4, 8)
>>> [p.physical for p in nhwc.pieces((1, 8, 4, 4), ((0, 0, 1, 0), (1, 8, 3, 4)))]  # rows 1..2: one piece
[((0, 0, 0, 0, 0, 1, 0, 0), (1, 1, 1, 1, 1, 3, 4, 8))]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

Region = tuple[tuple[int, ...], tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class Piece:
    """A part of a box that is one box of the physical array: `logical` in tensor coordinates, `physical` in the
    physical array's."""

    logical: Region
    physical: Region


@dataclass(frozen=True, slots=True)
class DramLayout:
    """Axes in `order` (outermost first), blocked by `block` (one extent per axis; () for no blocking).

    >>> DramLayout((1, 0), (2, 3)).physical_shape((4, 6))  # 2x3 blocks, column of blocks outermost
    (2, 2, 3, 2)
    """

    order: tuple[int, ...]
    block: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if sorted(self.order) != list(range(len(self.order))):
            raise ValueError(f"layout order {list(self.order)} is not a permutation of the axes")
        if self.block and (len(self.block) != len(self.order) or min(self.block) < 1):
            raise ValueError(f"layout block {list(self.block)} needs one positive extent per axis")

    def check(self, shape: tuple[int, ...]) -> str | None:
        """Why the layout cannot hold a tensor of `shape`, or None."""
        if len(self.order) != len(shape):
            return f"layout order {list(self.order)} has {len(self.order)} axes; the tensor has {len(shape)}"
        if self.block and any(extent % block for extent, block in zip(shape, self.block, strict=True)):
            return f"layout block {list(self.block)} does not divide the shape {list(shape)}"
        return None

    def blocks(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return self.block or tuple(shape)

    def physical_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        block = self.blocks(shape)
        return (*(shape[a] // block[a] for a in self.order), *(block[a] for a in self.order))

    def pieces(self, shape: tuple[int, ...], region: Region) -> list[Piece]:
        """The parts of `region` (a box of a tensor of `shape`) that are each one box of the physical array, in
        row-major order of the region's axes (head, whole, tail per axis)."""
        block = self.blocks(shape)
        per_axis = [_segments(start, stop, size) for start, stop, size in zip(*region, block, strict=True)]
        found = []
        for choice in itertools.product(*per_axis):
            logical = (tuple(seg[0] for seg in choice), tuple(seg[1] for seg in choice))
            outer = [(seg[2], seg[3]) for seg in choice]
            inner = [(seg[4], seg[5]) for seg in choice]
            ranges = [outer[a] for a in self.order] + [inner[a] for a in self.order]
            found.append(Piece(logical, (tuple(r[0] for r in ranges), tuple(r[1] for r in ranges))))
        return found

    def logical_axes(self) -> tuple[int, ...]:
        """The axis permutation that turns a piece's physical array into (outer_0, inner_0, outer_1, ...), which
        reshapes to the piece's logical box (outer-major on each axis)."""
        rank, position = len(self.order), {axis: p for p, axis in enumerate(self.order)}
        return tuple(itertools.chain.from_iterable((position[a], rank + position[a]) for a in range(rank)))


def _segments(start: int, stop: int, block: int) -> list[tuple[int, int, int, int, int, int]]:
    """(logical start, stop, outer start, stop, inner start, stop) of each segment of [start, stop) on one axis."""
    first, last = start // block, (stop - 1) // block
    if first == last:
        return [(start, stop, first, first + 1, start - first * block, stop - first * block)]
    found = []
    whole_start, whole_stop = -(-start // block), stop // block
    if start % block:
        found.append((start, (first + 1) * block, first, first + 1, start % block, block))
    if whole_start < whole_stop:
        found.append((whole_start * block, whole_stop * block, whole_start, whole_stop, 0, block))
    if stop % block:
        found.append((last * block, stop, last, last + 1, 0, stop % block))
    return found


def volume(region: Region) -> int:
    return math.prod(b - a for a, b in zip(*region, strict=True))
