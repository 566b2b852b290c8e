"""The stores a program has emitted so far, per tensor, found by overlap with a box: what a load from DRAM (or a
gather) must wait for.

A list scanned box by box made staging quadratic: vgg19 at 64 KiB loads its split convolutions' inputs tens of
thousands of times, each load compared with every store of that tensor. The boxes are kept in growing arrays and
compared all at once instead; the answer is the same set of stores.
"""

from __future__ import annotations

import numpy as np

from simulator.isa import Box


class _Table:
    def __init__(self, rank: int) -> None:
        self.starts = np.zeros((8, rank), dtype=np.int64)
        self.stops = np.zeros((8, rank), dtype=np.int64)
        self.ids = np.zeros(8, dtype=np.int64)
        self.count = 0

    def add(self, box: Box, index: int) -> None:
        if self.count == len(self.ids):
            self.starts, self.stops, self.ids = (np.concatenate([a, np.zeros_like(a)])
                                                 for a in (self.starts, self.stops, self.ids))
        self.starts[self.count], self.stops[self.count], self.ids[self.count] = box.start, box.stop, index
        self.count += 1


class StoreIndex:
    """Stores per tensor: `add` each as it is emitted, `meeting` the ones whose box overlaps a box, in order."""

    def __init__(self) -> None:
        self._tables: dict[str, _Table] = {}

    def add(self, tensor: str, box: Box, index: int) -> None:
        self._tables.setdefault(tensor, _Table(len(box.start))).add(box, index)

    def meeting(self, tensor: str, box: Box) -> list[int]:
        """The stores into `tensor` whose box shares an element with `box`, in the order they were emitted."""
        table = self._tables.get(tensor)
        if table is None or table.count == 0:
            return []
        n = table.count
        meets = np.logical_and(table.starts[:n] < np.asarray(box.stop, dtype=np.int64),
                               np.asarray(box.start, dtype=np.int64) < table.stops[:n]).all(axis=1)
        return [int(i) for i in table.ids[:n][meets]]
