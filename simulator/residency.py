"""The verifier's abstract scratchpad: what each buffer holds, who has touched it, and who owns each address.

Nothing here judges a program; `simulator.dataflow` walks the instructions in program order, updates this state and
asks happens-before questions about it.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from simulator.regions import Region, RegionIndex


class Users:
    """The instructions that touched something since a point, kept small: every DMA transfer, but only the last
    Compute per engine (an engine's earlier Computes happen-before its last one, so waiting for it waits for all)."""

    __slots__ = ("computes", "transfers")

    def __init__(self) -> None:
        self.transfers: list[int] = []
        self.computes: dict[str, int] = {}

    def add(self, instruction: int, engine: str | None) -> None:
        if engine is None:
            self.transfers.append(instruction)
        else:
            self.computes[engine] = instruction

    def ids(self) -> list[int]:
        return sorted([*self.transfers, *self.computes.values()])

    def copy(self) -> Users:
        clone = Users()
        clone.transfers = list(self.transfers)
        clone.computes = dict(self.computes)
        return clone


@dataclass(slots=True)
class Segment:
    """Part of a buffer (`region`, in buffer coordinates) holding the tensor elements at `region` + `shift`, written
    by instruction `writer` and read since by `readers`."""

    region: Region
    tensor: str
    shift: tuple[int, ...]
    writer: int
    readers: Users = field(default_factory=Users)

    def holds(self, tensor: str, shift: tuple[int, ...]) -> bool:
        return self.tensor == tensor and self.shift == shift


class Contents:
    """The segments of one buffer: disjoint, so a read or write of exactly one earlier write's region (a tile written
    and read whole, the common case) finds it by its region alone; any other region asks a `RegionIndex`.

    >>> contents = Contents((8,))
    >>> contents.add(Segment(((0,), (4,)), "X", (0,), writer=0))
    >>> [segment.writer for segment, common in contents.overlapping(((2,), (6,)))]
    [0]
    """

    __slots__ = ("_index",)

    def __init__(self, shape: tuple[int, ...]) -> None:
        self._index: RegionIndex[Region, Segment] = RegionIndex(shape)

    def overlapping(self, region: Region) -> list[tuple[Segment, Region]]:
        """The segments that meet `region`, each with the part they share."""
        exact = self._index.get(region)
        if exact is not None:
            return [(exact, region)]
        return self._index.overlapping(region)

    def add(self, segment: Segment) -> None:
        self._index.add(segment.region, segment.region, segment)

    def remove(self, segment: Segment) -> None:
        self._index.remove(segment.region)


@dataclass(slots=True, eq=False)
class Lifetime:
    """One live interval of a buffer: from its first write after the start (or after its last Release) to `release`
    (None while it is live, and to the end of the program if it never is)."""

    buffer: str
    first_write: int
    release: int | None = None


class AddressMap:
    """Which lifetime last took each byte range of a partition.

    Every buffer starts at partition 0, so two buffers share bytes exactly when their [offset, offset +
    partition_bytes) ranges meet. Per byte, the lifetimes that took it form a chain in program order; checking each
    against the one before it orders the whole chain.

    >>> addresses = AddressMap()
    >>> a, b = Lifetime("a", 0), Lifetime("b", 1)
    >>> addresses.take(0, 64, a), [owner.buffer for owner in addresses.take(32, 96, b)]
    ([], ['a'])
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._pieces: list[tuple[int, int, Lifetime]] = []

    def take(self, start: int, stop: int, lifetime: Lifetime) -> list[Lifetime]:
        """Give [start, stop) to `lifetime`; return the lifetimes that held any of it before, each once."""
        first = bisect_right(self._starts, start) - 1
        if first < 0 or self._pieces[first][1] <= start:
            first += 1
        last = first
        previous: list[Lifetime] = []
        while last < len(self._pieces) and self._pieces[last][0] < stop:
            owner = self._pieces[last][2]
            if all(owner is not seen for seen in previous):
                previous.append(owner)
            last += 1
        replacement: list[tuple[int, int, Lifetime]] = [(start, stop, lifetime)]
        if last > first:
            low, _, owner = self._pieces[first]
            if low < start:
                replacement.insert(0, (low, start, owner))
            _, high, owner = self._pieces[last - 1]
            if high > stop:
                replacement.append((stop, high, owner))
        self._pieces[first:last] = replacement
        self._starts[first:last] = [low for low, _, _ in replacement]
        return previous
