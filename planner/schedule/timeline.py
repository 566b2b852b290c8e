"""A coarse timeline of a schedule's instructions, for the cost model's cycle estimate.

The cost model walks a schedule's units in program order and calls `load`, `compute` and `store` here as staging
would emit them; each call returns when that instruction would finish. The resources follow the simulator
(simulator.timing): DMA queues take transfers round-robin and in order, each holding its descriptor stage for
`descriptors * descriptor_cycles` with at most `dma.outstanding` in flight, then waiting the DRAM latency and moving
its burst-rounded bytes at the lesser of the engine's and the DRAM's bandwidth, DRAM first come, first served; the
tensor and the vector engine run their computes in program order. Dependencies are the data's: a compute waits for
what it reads, a load of an intermediate for its stores, a store for its compute; and a unit's first buffers wait
for the unit before it to finish (the allocator reuses its addresses). What it leaves out: the other waits the
allocator adds where buffers reuse addresses, and the sharing of DRAM bandwidth among transfers in flight.

>>> # t = Timeline(lowered, machine); done = t.load("x", box, after=0.0); t.compute("tensor", 100, done)
"""

from __future__ import annotations

import functools

from planner.staging.queue_split import queue_parts
from planner.stmt import LoweredGraph
from simulator.isa import Box
from simulator.machine import MachineConfig
from simulator.timing import descriptors, transfer_bytes


class Timeline:
    """Finish times of the instructions issued so far, and the DRAM bytes they move."""

    def __init__(self, lowered: LoweredGraph, machine: MachineConfig) -> None:
        self.lowered, self.machine = lowered, machine
        dma = machine.dma
        self._queue_free = [0.0] * dma.engines
        self._in_flight: list[list[float]] = [[] for _ in range(dma.engines)]
        self._next_queue = 0
        self._dram_free = 0.0
        self._rate = min(dma.engine_bandwidth_bytes_per_cycle, machine.dram.bandwidth_bytes_per_cycle)
        self._engine_free = {"tensor": 0.0, "vector": 0.0}
        self.stored: dict[str, float] = {}    # tensor -> when its last store so far finishes
        self.computed: dict[str, float] = {}  # tensor -> when its last compute so far finishes
        self.dram_bytes = 0
        self.end = 0.0
        self.barrier = 0.0  # when the unit being issued may first write its buffers (planner.schedule.cost)

    def load(self, tensor: str, box: Box, after: float = 0.0) -> float:
        """A load of `box` of `tensor` (after the stores that wrote it); returns when it has landed."""
        self.dram_bytes += box.numel * self.lowered.graph.elem_bytes(tensor)
        return self._transfer(tensor, box, max(after, self.stored.get(tensor, 0.0)))

    def gather(self, table: str, rows: int, row_elements: int, after: float) -> float:
        """An indirect DMA of `rows` rows of `row_elements` elements each, one descriptor per row."""
        elem_bytes = self.lowered.graph.elem_bytes(table)
        self.dram_bytes += rows * row_elements * elem_bytes
        return self._move(rows * self.machine.dma.descriptor_cycles, rows * row_elements * elem_bytes, after)

    def store(self, tensor: str, box: Box, after: float) -> float:
        """A store of `box` of `tensor`; returns when it is in DRAM."""
        self.dram_bytes += box.numel * self.lowered.graph.elem_bytes(tensor)
        done = self._transfer(tensor, box, after)
        self.stored[tensor] = max(self.stored.get(tensor, 0.0), done)
        return done

    def compute(self, engine: str, cycles: int, after: float, output: str | None = None) -> float:
        """A compute of `cycles` on `engine` ("tensor" or "vector") once `after` has passed."""
        start = max(self._engine_free[engine], after)
        done = self._engine_free[engine] = start + cycles
        if output is not None:
            self.computed[output] = max(self.computed.get(output, 0.0), done)
        self.end = max(self.end, done)
        return done

    def _transfer(self, tensor: str, box: Box, after: float) -> float:
        dma, graph = self.machine.dma, self.lowered.graph
        done = after
        for count, burst_bytes in _parts(graph.tensors[tensor].shape, graph.elem_bytes(tensor), box, dma.engines,
                                         dma.descriptor_dims, dma.burst_bytes):
            done = max(done, self._move(count * dma.descriptor_cycles, burst_bytes, after))
        return done

    def _move(self, descriptor_cycles: int, burst_bytes: int, after: float) -> float:
        queue = self._next_queue
        self._next_queue = (queue + 1) % self.machine.dma.engines
        flying = self._in_flight[queue]
        freed = 0.0
        if len(flying) >= self.machine.dma.outstanding:  # wait for the first in flight to finish
            freed = min(flying)
            flying.remove(freed)
        start = max(after, self._queue_free[queue], freed)
        self._queue_free[queue] = start + descriptor_cycles
        arrive = start + descriptor_cycles + self.machine.dram.latency_cycles
        # DRAM moves the transfers first come, first served (the simulator shares it among them instead: the same
        # throughput, but a small transfer behind a large one lands later here).
        begin = max(arrive, self._dram_free)
        self._dram_free = begin + burst_bytes / self.machine.dram.bandwidth_bytes_per_cycle
        done = begin + burst_bytes / self._rate
        flying.append(done)
        self.end = max(self.end, done)
        return done


@functools.lru_cache(maxsize=1 << 16)
def _parts(shape: tuple[int, ...], elem_bytes: int, box: Box, engines: int, descriptor_dims: int, burst: int,
           ) -> tuple[tuple[int, int], ...]:
    """(descriptors, burst-rounded bytes) of each queue's part of one transfer of `box`: the search prices the same
    boxes of the same tensors over and over (a fifth of resnet50's plan time went into splitting them again)."""
    return tuple((descriptors(shape, part, descriptor_dims), transfer_bytes(shape, elem_bytes, part, burst)[2])
                 for part in queue_parts(box, elem_bytes, engines))
