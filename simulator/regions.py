"""Exact arithmetic on half-open boxes of integer coordinates, as plain tuples (start, stop).

The verifier asks "is this box covered by the union of those?" for scratchpad reads and DRAM stores; answering by
subtraction (each cut splits a box into at most 2 * rank disjoint pieces) counts the union exactly, overlaps included,
without enumerating elements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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
    start = tuple(map(max, a[0], b[0]))
    stop = tuple(map(min, a[1], b[1]))
    if any(lo >= hi for lo, hi in zip(start, stop, strict=True)):
        return None
    return start, stop


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
