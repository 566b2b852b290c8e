"""Per-op figures of a simulation (`SimStats.ops`): aggregated over the instructions with numpy, one column per
figure, and handed out as `OpStats` on access, so that a program of many ops makes no Python object per op until
someone reads it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.costs import COMPUTE, GATHER, LOAD, STORE, Costs


@dataclass(frozen=True, slots=True)
class OpStats:
    """One op's share: `cycles` from the start of its first instruction to the end of its last (spans of different
    ops may overlap), the payload bytes its loads read and its stores wrote, the same rounded up to whole bursts run
    by run (what they took of the DRAM bandwidth), and `compute_cycles`, the engine-busy cycles of its computes (their
    summed durations)."""

    cycles: int
    dram_bytes_read: int
    dram_bytes_written: int
    dram_burst_bytes_read: int = 0
    dram_burst_bytes_written: int = 0
    compute_cycles: int = 0


FIELDS = OpStats.__slots__


class OpTable(Mapping[str, OpStats]):
    """{op name: OpStats}, in order of the ops' first instructions, kept as one list per OpStats field.

    >>> table = OpTable(["conv"], [[10], [4], [2], [64], [64], [8]])
    >>> table["conv"].cycles, list(table), table == {"conv": OpStats(10, 4, 2, 64, 64, 8)}
    (10, ['conv'], True)
    """

    __slots__ = ("_columns", "_index")

    def __init__(self, names: list[str], columns: list[list[int]]) -> None:
        self._index = dict(zip(names, range(len(names)), strict=True))
        self._columns = columns

    def __getitem__(self, name: str) -> OpStats:
        row = self._index[name]
        return OpStats(*(column[row] for column in self._columns))

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __repr__(self) -> str:
        return f"OpTable({dict(self.items())!r})"

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """{name: {field: value}} in field order, JSON-ready."""
        return {name: dict(zip(FIELDS, row, strict=True))
                for name, row in zip(self._index, zip(*self._columns, strict=True), strict=True)}


def op_stats(costs: Costs, start: np.ndarray, end: np.ndarray) -> OpTable:
    """Per op name, in order of first appearance: first start, last end, bytes by direction, compute cycles; each a
    reduction over the instructions grouped by op (instructions of no op, "" such as a Release, are left out)."""
    names, ids, kind = list(costs.op_names), costs.op_ids, costs.kind
    if not names:
        return OpTable([], [[] for _ in FIELDS])
    groups = len(names)
    order = np.argsort(ids, kind="stable")
    firsts = np.searchsorted(ids[order], np.arange(groups))  # every op has at least one instruction
    reads, writes = (kind == LOAD) | (kind == GATHER), kind == STORE
    spans = np.maximum.reduceat(end[order], firsts) - np.minimum.reduceat(start[order], firsts)
    sums = [np.add.reduceat(np.where(mask, values, 0)[order], firsts)
            for mask, values in ((reads, costs.payload_bytes), (writes, costs.payload_bytes),
                                 (reads, costs.burst_bytes), (writes, costs.burst_bytes),
                                 (kind == COMPUTE, end - start))]
    columns = [column.tolist() for column in (spans, *sums)]
    if "" in names:
        empty = names.index("")
        del names[empty]
        for column in columns:
            del column[empty]
    return OpTable(names, columns)

