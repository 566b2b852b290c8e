"""Exact arithmetic on half-open boxes of integer coordinates, as plain tuples (start, stop).

The verifier asks "is this box covered by the union of those?" for scratchpad reads and DRAM stores; answering by
subtraction (each cut splits a box into at most 2 * rank disjoint pieces) counts the union exactly, overlaps included,
without enumerating elements.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

Region = tuple[tuple[int, ...], tuple[int, ...]]


def volume(region: Region) -> int:
    """Elements in a region.

    >>> volume(((0, 2), (3, 5)))
    9
    """
    return math.prod(stop - start for start, stop in zip(*region, strict=True))


def intersect(a: Region, b: Region) -> Region | None:
    """The common part of two regions of one rank, or None.

    >>> intersect(((0, 0), (4, 4)), ((2, 3), (6, 9)))
    ((2, 3), (4, 4))
    """
    start, stop = [], []
    for low_a, high_a, low_b, high_b in zip(a[0], a[1], b[0], b[1], strict=True):
        low = low_a if low_a > low_b else low_b
        high = high_a if high_a < high_b else high_b
        if low >= high:
            return None
        start.append(low)
        stop.append(high)
    return tuple(start), tuple(stop)


def subtract(a: Region, b: Region) -> list[Region]:
    """Disjoint pieces that together make a minus b.

    >>> subtract(((0,), (10,)), ((3,), (5,)))
    [((0,), (3,)), ((5,), (10,))]
    """
    common = intersect(a, b)
    if common is None:
        return [a]
    pieces: list[Region] = []
    start, stop = list(a[0]), list(a[1])
    for axis in range(len(start)):
        # Peel off the slabs of what is left that lie below and above the cut on this axis.
        if start[axis] < common[0][axis]:
            pieces.append((tuple(start), (*stop[:axis], common[0][axis], *stop[axis + 1:])))
        if common[1][axis] < stop[axis]:
            pieces.append(((*start[:axis], common[1][axis], *start[axis + 1:]), tuple(stop)))
        start[axis], stop[axis] = common[0][axis], common[1][axis]
    return pieces


def uncovered(target: Region, cuts: Iterable[Region]) -> list[Region]:
    """Disjoint pieces of target that no cut covers; [] when the cuts cover it.

    >>> uncovered(((0, 0), (4, 8)), [((0, 0), (3, 8)), ((2, 0), (4, 4))])
    [((3, 4), (4, 8))]
    """
    left = [target]
    for cut in cuts:
        left = [piece for region in left for piece in subtract(region, cut)]
        if not left:
            break
    return left


def shifted(region: Region, shift: tuple[int, ...]) -> Region:
    """The region moved by `shift` on every axis.

    >>> shifted(((0, 1), (2, 3)), (10, -1))
    ((10, 0), (12, 2))
    """
    return (tuple(x + d for x, d in zip(region[0], shift, strict=True)),
            tuple(x + d for x, d in zip(region[1], shift, strict=True)))


def describe(name: str, region: Region) -> str:
    """`X[0:2, 4:8]`.

    >>> describe("X", ((0, 4), (2, 8)))
    'X[0:2, 4:8]'
    """
    return f"{name}[{', '.join(f'{lo}:{hi}' for lo, hi in zip(*region, strict=True))}]"


K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class RegionIndex(Generic[K, T]):
    """Items with a region each, in one coordinate space (a buffer's or a tensor's), found by the regions they meet.

    Programs cut a space into tiles, so the index buckets one axis: the one that the first region not filling the
    space cuts finest, in buckets one such tile wide (at most MAX_BUCKETS over the space). A region of about a tile
    then lands in a bucket or two; one that would span more than WIDE buckets is kept aside and checked against every
    query, and so is everything added before the axis is chosen.

    >>> index: RegionIndex[int, str] = RegionIndex((100, 8))
    >>> for row in range(100):
    ...     index.add(row, ((row, 0), (row + 1, 8)), f"row {row}")
    >>> [item for item, common in index.overlapping(((41, 2), (43, 4)))]
    ['row 41', 'row 42']
    """

    WIDE = 16
    MAX_BUCKETS = 4096

    def __init__(self, space: tuple[int, ...]) -> None:
        self._space = space
        self._axis = -1  # not chosen yet
        self._width = 1
        self._entries: dict[K, tuple[Region, T, tuple[int, int] | None]] = {}
        self._buckets: dict[int, dict[K, None]] = {}
        self._wide: dict[K, None] = {}

    def get(self, key: K) -> T | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def add(self, key: K, region: Region, item: T) -> None:
        if self._axis < 0:
            self._choose_axis(region)
        span = self._span(region)
        self._entries[key] = (region, item, span)
        if span is None:
            self._wide[key] = None
        else:
            for bucket in range(span[0], span[1] + 1):
                self._buckets.setdefault(bucket, {})[key] = None

    def remove(self, key: K) -> None:
        _, _, span = self._entries.pop(key)
        if span is None:
            del self._wide[key]
        else:
            for bucket in range(span[0], span[1] + 1):
                del self._buckets[bucket][key]

    def overlapping(self, region: Region) -> list[tuple[T, Region]]:
        """The items whose regions meet `region`, each with the part they share."""
        span = self._span(region)
        keys: Iterable[K]
        if span is None:
            keys = self._entries
        else:
            nearby = dict(self._wide)
            for bucket in range(span[0], span[1] + 1):
                nearby.update(self._buckets.get(bucket, {}))
            keys = nearby
        found = []
        for key in keys:
            theirs, item, _ = self._entries[key]
            common = intersect(theirs, region)
            if common is not None:
                found.append((item, common))
        return found

    def _choose_axis(self, region: Region) -> None:
        cuts = [((stop - start) / extent, -extent, axis) for axis, (start, stop, extent)
                in enumerate(zip(*region, self._space, strict=True)) if 0 < stop - start < extent]
        if cuts:
            self._axis = min(cuts)[2]
            tile = region[1][self._axis] - region[0][self._axis]
            self._width = max(tile, -(-self._space[self._axis] // self.MAX_BUCKETS))

    def _span(self, region: Region) -> tuple[int, int] | None:
        """The first and last bucket the region meets; None if it is too wide to bucket, or no axis is chosen."""
        if self._axis < 0:
            return None
        first, last = region[0][self._axis] // self._width, (region[1][self._axis] - 1) // self._width
        return (first, last) if last - first < self.WIDE else None
