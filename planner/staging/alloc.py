"""Scratchpad addresses: a layout for each buffer, and offsets from lifetimes, with capacity proven.

A buffer's first layout axis maps onto partitions, so the layout decides how many bytes each partition gives it. The
allocator takes buffers with lifetimes (first and last instruction that uses them), sweeps them in order of first
use, and places each at the lowest aligned offset that no live buffer occupies (first fit over the gaps, so freed
holes are reused). The result is a substitution of offsets, checked against the partition size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from planner.errors import PlanError
from simulator.machine import ScratchpadConfig


def choose_layout(shape: tuple[int, ...], elem_bytes: int, partitions: int) -> tuple[tuple[int, ...], int]:
    """The axis order that needs the fewest bytes per partition, and that byte count.

    >>> choose_layout((1, 64, 8, 8), 2, 32)  # channels on partitions: 2 rows of 8x8 each
    ((1, 0, 2, 3), 256)
    """
    best: tuple[int, tuple[int, ...]] | None = None
    for axis in [*range(1, len(shape)), 0] if shape else []:
        rows = shape[axis]
        per_partition = -(-rows // partitions) * (math.prod(shape) // rows) * elem_bytes
        if best is None or per_partition < best[0]:
            best = (per_partition, (axis, *[a for a in range(len(shape)) if a != axis]))
    if best is None:
        return (), elem_bytes
    return best[1], best[0]


def align(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def buffer_bytes(shape: tuple[int, ...], elem_bytes: int, scratchpad: ScratchpadConfig) -> int:
    """Aligned bytes per partition a buffer of this shape takes, in its best layout."""
    return align(choose_layout(shape, elem_bytes, scratchpad.partitions)[1], scratchpad.alignment_bytes)


@dataclass(frozen=True, slots=True)
class Lifetime:
    """A buffer to place: bytes it needs in each partition, from instruction `first` to `last` inclusive.

    A buffer with a `pinned` offset (a tensor kept across ops, placed by the whole-graph schedule) stays there;
    the others go first-fit from the bottom, below the pinned ones.
    """

    name: str
    partition_bytes: int
    first: int
    last: int
    pinned: int | None = None


def allocate(lifetimes: Sequence[Lifetime], partition_capacity: int, alignment: int, what: str) -> dict[str, int]:
    """Offsets (bytes within each partition) such that buffers live at the same time never overlap.

    >>> allocate([Lifetime("a", 100, 0, 5), Lifetime("b", 50, 2, 3), Lifetime("c", 100, 6, 9)], 256, 64, "m")
    {'a': 0, 'b': 128, 'c': 0}
    """
    offsets: dict[str, int] = {}
    live: list[tuple[int, int, int]] = []  # (offset, end, last use)
    for lifetime in sorted(lifetimes, key=lambda b: (b.first, -b.partition_bytes, b.name)):
        live = [entry for entry in live if entry[2] >= lifetime.first]
        size = align(lifetime.partition_bytes, alignment)
        if lifetime.pinned is not None:
            offset = lifetime.pinned
            if any(start < offset + size and offset < end for start, end, _ in live):
                raise PlanError(f"{what}: buffer {lifetime.name} is pinned at {offset}, where a live buffer lies")
        else:
            offset = 0
            for start, end, _ in sorted(live):
                if offset + size <= start:
                    break
                offset = max(offset, end)
        if offset < 0 or offset + size > partition_capacity:
            in_use = sum(end - start for start, end, _ in live)
            raise PlanError(f"{what}: buffer {lifetime.name} needs {size} bytes per partition at offset {offset}; "
                            f"{in_use} of {partition_capacity} bytes per partition are in use")
        offsets[lifetime.name] = offset
        live.append((offset, offset + size, lifetime.last))
    return offsets
