"""What a timed program did: cycles, DRAM traffic, engine occupancy, DMA stalls, scratchpad peak, per-op spans.

Everything here is read off a finished schedule (each instruction's start and end cycle) and the instructions' costs
(`simulator.costs`); `simulator.timing` makes the schedule and calls `collect_stats`. The sums are numpy reductions
over per-instruction arrays: a program has up to millions of instructions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.costs import COMPUTE, FIRST_QUEUE, GATHER, LOAD, RELEASE, STORE, TENSOR, VECTOR, Costs
from simulator.op_stats import OpStats, OpTable, op_stats

__all__ = ["OpStats", "SimStats", "buffer_sizes", "collect_stats", "scratchpad_timeline"]
from simulator.isa import Compute, DmaGather, DmaLoad, Program, Release
from simulator.machine import MachineConfig


@dataclass(frozen=True, slots=True)
class SimStats:
    """Totals of one simulation; all times in cycles, all sizes in bytes.

    - `total_cycles`: completion of the last instruction (0 for an empty program).
    - `dram_bytes_read` / `dram_bytes_written`: payload (`box.numel * elem_bytes`) of all loads / stores.
    - `dram_burst_bytes`: what actually took DRAM bandwidth: every contiguous run rounded up to whole bursts;
      `dram_burst_bytes_read` / `dram_burst_bytes_written` split it between loads and stores.
    - `busy_cycles`: per resource (`tensor`, `vector`, `dma0`, `dma1`...): for an engine, the sum of its computes'
      cycles; for a DMA queue, the cycles during which it had at least one transfer in flight.
    - `engine_stall_cycles` (and their sum `stall_cycles`): for each compute, the cycles between the moment its
      engine was free and all its non-DMA dependencies had completed (a Release's dependencies count in its place)
      and the moment it started, i.e. the cycles the engine sat idle waiting only on a DmaLoad or DmaStore. The idle
      time before an engine's first compute counts too.
    - `peak_scratchpad_bytes`: the most bytes held at once by live buffers, a buffer taking
      `partition_bytes(P) * partitions_used(P)`; a buffer is live from the start of an instruction writing it (a
      load into it, a compute whose output is in it) to the completion of a Release of it, and may be live again.
    - `ops`: per op name (`Compute.node`, `DmaLoad.op`, `DmaStore.op`) in order of first appearance; instructions
      with an empty op name are left out.
    """

    total_cycles: int
    dram_bytes_read: int
    dram_bytes_written: int
    dram_burst_bytes: int
    dram_burst_bytes_read: int
    dram_burst_bytes_written: int
    dma_transfers: int
    busy_cycles: Mapping[str, int]
    stall_cycles: int
    engine_stall_cycles: Mapping[str, int]
    peak_scratchpad_bytes: int
    ops: Mapping[str, OpStats]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, keys in field order, `ops` as {name: {cycles, dram_bytes_read, dram_bytes_written,
        dram_burst_bytes_read, dram_burst_bytes_written}}."""
        document: dict[str, Any] = {name: getattr(self, name) for name in self.__slots__}
        document["busy_cycles"] = dict(self.busy_cycles)
        document["engine_stall_cycles"] = dict(self.engine_stall_cycles)
        document["ops"] = (self.ops.to_dict() if isinstance(self.ops, OpTable) else
                           {name: {slot: getattr(op, slot) for slot in op.__slots__} for name, op in self.ops.items()})
        return document


def collect_stats(costs: Costs, machine: MachineConfig, sizes: Mapping[str, int], start: np.ndarray,
                  end: np.ndarray) -> SimStats:
    """The stats of a finished schedule (int64 arrays of each instruction's start and end cycle); `sizes` are the
    scratchpad bytes each buffer takes (`buffer_sizes`)."""
    kind, resource, payload, burst = costs.kind, costs.resource, costs.payload_bytes, costs.burst_bytes
    busy = {"tensor": _sum(end - start, resource == TENSOR), "vector": _sum(end - start, resource == VECTOR)}
    for q in range(machine.dma.engines):
        queue = np.flatnonzero(resource == FIRST_QUEUE + q)
        # transfers of a queue start in program order, so the union of their intervals grows left to right: each
        # adds what it runs past the furthest end before it
        covered = np.concatenate(([0], np.maximum.accumulate(end[queue])[:-1])) if queue.size else queue
        busy[f"dma{q}"] = int(np.maximum(0, end[queue] - np.maximum(start[queue], covered)).sum())
    reads, writes = (kind == LOAD) | (kind == GATHER), kind == STORE
    stalls = _engine_stalls(costs, start, end)
    sizes_by_id = np.array([sizes[name] for name in costs.buffer_names], dtype=np.int64)
    _, live = _live_bytes(kind, costs.buffer_ids, sizes_by_id, start, end)
    return SimStats(total_cycles=int(end.max()) if end.size else 0, dram_bytes_read=_sum(payload, reads),
                    dram_bytes_written=_sum(payload, writes), dram_burst_bytes=int(burst.sum()),
                    dram_burst_bytes_read=_sum(burst, reads), dram_burst_bytes_written=_sum(burst, writes),
                    dma_transfers=int((reads | writes).sum()), busy_cycles=busy, stall_cycles=sum(stalls.values()),
                    engine_stall_cycles=stalls, peak_scratchpad_bytes=int(live.max()) if live.size else 0,
                    ops=op_stats(costs, start, end))


def _sum(values: np.ndarray, mask: np.ndarray) -> int:
    return int(values[mask].sum())


def _engine_stalls(costs: Costs, start: np.ndarray, end: np.ndarray) -> dict[str, int]:
    # settled[i]: when the non-DMA dependencies of i had completed, looking through Releases (a Release stands for
    # what it waited on): the least fixed point of settled = max over deps of (end of a Compute, settled of a
    # Release), found by relaxing all edges at once until nothing moves (as many rounds as the longest chain of
    # Releases)
    kind, resource, sources = costs.kind, costs.resource, costs.dep_sources
    targets = np.repeat(np.arange(len(kind), dtype=np.int64), costs.dep_counts)
    is_release = kind == RELEASE
    value = np.where(kind == COMPUTE, end, 0)  # what a dependency contributes; 0 for a DMA
    settled = np.zeros(len(kind), dtype=np.int64)
    while True:
        settled[:] = 0
        np.maximum.at(settled, targets, value[sources])
        if np.array_equal(value[is_release], settled[is_release]):
            break
        value[is_release] = settled[is_release]
    stalls = {}
    for name, engine in (("tensor", TENSOR), ("vector", VECTOR)):
        computes = np.flatnonzero((resource == engine) & (kind == COMPUTE))
        free = np.concatenate(([0], end[computes][:-1]))  # the engine is free when its previous compute ended
        stalls[name] = int((start[computes] - np.maximum(free, settled[computes])).sum())
    return stalls


def buffer_sizes(program: Program, machine: MachineConfig) -> dict[str, int]:
    """Scratchpad bytes each buffer takes: `partition_bytes(P) * partitions_used(P)`."""
    partitions = machine.scratchpad.partitions
    return {b.name: b.partition_bytes(partitions) * b.partitions_used(partitions) for b in program.buffers}


def scratchpad_timeline(program: Program, machine: MachineConfig, start_cycles: Sequence[int],
                        end_cycles: Sequence[int]) -> list[tuple[int, int]]:
    """(cycle, live buffer bytes from that cycle on) at every cycle where the live set changes, in time order.

    A Release completing at cycle t frees its buffer before a write starting at t takes one (intervals are
    half-open), so two buffers that hand over at t never count together.
    """
    kinds, buffers = [], []
    for instruction in program.instructions:
        if isinstance(instruction, Release):
            kinds.append(RELEASE)
            buffers.append(instruction.buffer)
        elif isinstance(instruction, DmaLoad):
            kinds.append(LOAD)
            buffers.append(instruction.buffer)
        elif isinstance(instruction, (Compute, DmaGather)):
            kinds.append(COMPUTE)
            buffers.append(instruction.output.buffer)
        else:
            kinds.append(STORE)
            buffers.append("")
    distinct = [name for name in dict.fromkeys(buffers) if name]
    index = {name: position for position, name in enumerate(distinct)}
    sizes = buffer_sizes(program, machine)
    return _timeline_of(np.array(kinds, dtype=np.int64),
                        np.fromiter(map(index.get, buffers, [-1] * len(buffers)), dtype=np.int64, count=len(buffers)),
                        np.array([sizes[name] for name in distinct], dtype=np.int64),
                        np.array(start_cycles, dtype=np.int64), np.array(end_cycles, dtype=np.int64))


def _timeline_of(kinds: np.ndarray, ids: np.ndarray, sizes: np.ndarray, start_cycles: np.ndarray,
                 end_cycles: np.ndarray) -> list[tuple[int, int]]:
    cycle, live = _live_bytes(kinds, ids, sizes, start_cycles, end_cycles)
    return list(zip(cycle.tolist(), live.tolist(), strict=True))


def _live_bytes(kinds: np.ndarray, ids: np.ndarray, sizes: np.ndarray, start_cycles: np.ndarray,
                end_cycles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # (cycles, live bytes from each on): buffer ids[i] (-1 for none) is written or released by instruction i
    # a buffer is live from a write's start to a Release's end: per buffer, in time order (a release before a
    # write at the same cycle), a write to a dead buffer takes it and a Release of a live one frees it
    touched = np.flatnonzero(ids >= 0)
    if not touched.size:
        return touched, touched
    is_write = kinds[touched] != RELEASE
    cycle = np.where(is_write, start_cycles[touched], end_cycles[touched])
    buffer = ids[touched]
    order = np.lexsort((is_write, cycle, buffer))
    buffer, cycle, is_write = buffer[order], cycle[order], is_write[order]
    was_live = np.concatenate(([False], is_write[:-1] & (buffer[1:] == buffer[:-1])))
    size = sizes[buffer]
    delta = np.where(is_write & ~was_live, size, np.where(~is_write & was_live, -size, 0))
    changed = delta != 0
    cycle, delta = cycle[changed], delta[changed]
    order = np.argsort(cycle, kind="stable")
    cycle, live = cycle[order], np.cumsum(delta[order])
    if not cycle.size:  # nothing ever written (a program of Releases alone): the scratchpad stays empty
        return cycle, live
    last = np.flatnonzero(np.concatenate((cycle[1:] != cycle[:-1], [True])))  # a cycle's figure: after all its changes
    return cycle[last], live[last]

