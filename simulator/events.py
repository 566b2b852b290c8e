"""The event loop of the timing model: when each instruction starts and ends, given its costs (`simulator.costs`).

Events live in one heap of plain ints, `(cycle * 3 + kind) * span + subject`, so that they order exactly as the
tuples (cycle, kind, subject) would, without a tuple per event; kinds are handled within a cycle in the order
complete, data start, queue free. Engines and DMA queues take their instructions in program order from a FIFO each;
the DRAM bandwidth is the fluid model of `simulator.bandwidth`. Releases take no resource: they complete, in a chain,
the moment their dependencies have. A queue whose ready head waits only for its descriptor stage gets one wake-up
event for when the stage frees (rather than one event per transfer: a wake-up with nothing to start is a no-op).

Programs of COMPILED_FROM instructions or more run the same loop compiled (`simulator.events_jit`) when numba is
installed; both give the same cycles (tests/simulator/test_timing_golden.py).
"""

from __future__ import annotations

import math
from heapq import heappop, heappush

import numpy as np

from simulator.bandwidth import EPS_ABS, EPS_REL, Bandwidth
from simulator.costs import FIRST_QUEUE, NO_RESOURCE, Costs
from simulator.machine import MachineConfig

_COMPLETE, _DATA_START, _QUEUE_FREE = 0, 1, 2


# from this many instructions on, the compiled loop (simulator.events_jit, if numba is installed) pays for its import
COMPILED_FROM = 20_000


def schedule(costs: Costs, machine: MachineConfig, *, compiled: bool | None = None) -> tuple[list[int], list[int]]:
    """(start cycles, end cycles) of every instruction; `compiled` forces (True) or avoids (False) the compiled
    loop, which by default runs programs of at least COMPILED_FROM instructions when numba is installed."""
    start, end = schedule_arrays(costs, machine, compiled=compiled)
    return start.tolist(), end.tolist()


def schedule_arrays(costs: Costs, machine: MachineConfig, *, compiled: bool | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """`schedule` as int64 arrays."""
    if compiled or (compiled is None and len(costs.resource) >= COMPILED_FROM):
        from simulator import events_jit  # imported only here: numba takes a while to import

        result = events_jit.schedule_arrays(costs, machine)
        if result is not None:
            return result
    start, end = _python_loop(costs, machine)
    return np.array(start, dtype=np.int64), np.array(end, dtype=np.int64)


def _python_loop(costs: Costs, machine: MachineConfig) -> tuple[list[int], list[int]]:
    resource, fixed_cycles, warm_cycles, burst_bytes = (costs.resource.tolist(), costs.fixed_cycles.tolist(),
                                                        costs.warm_cycles.tolist(), costs.burst_bytes.tolist())
    size = len(resource)
    load_cycles = machine.tensor_engine.load_cycles
    latency, outstanding, queues = machine.dram.latency_cycles, machine.dma.outstanding, machine.dma.engines
    span = max(size, FIRST_QUEUE + queues) + 1  # subjects are instruction ids or resources, all below span
    span3 = 3 * span
    fifos: list[list[int]] = [[] for _ in range(FIRST_QUEUE + queues)]
    dependents: list[list[int]] = [[] for _ in range(size)]
    waiting = [0] * size  # dependencies not yet completed
    for i, deps in enumerate(costs.deps):
        r = resource[i]
        if r != NO_RESOURCE:
            fifos[r].append(i)
        if len(deps) == 1:  # the common case, without building a set
            waiting[i] = 1
            dependents[deps[0]].append(i)
        elif deps:
            unique = set(deps)
            waiting[i] = len(unique)
            for dep in unique:
                dependents[dep].append(i)
    for fifo in fifos:
        fifo.append(-1)  # a sentinel: an empty FIFO's head is -1, never ready
    waiting.append(1)    # ... because waiting[-1] is not zero
    heads = [0] * len(fifos)
    engine_busy = [False, False]
    engine_last_end = [-1, -1]  # when each engine's previous compute ended
    ready_cycles = [0] * size   # when each instruction's last dependency completed
    in_flight = [0] * queues
    descriptor_free = [0] * queues  # cycle at which a queue's descriptor stage frees
    woken = [-1] * queues  # the cycle of a queue's pending wake-up
    start_cycles, end_cycles = [-1] * size, [-1] * size
    events: list[int] = []
    bandwidth = Bandwidth(machine)

    def start_engine(r: int, now: int) -> None:
        i = fifos[r][heads[r]]
        if not engine_busy[r] and not waiting[i]:
            heads[r] += 1
            engine_busy[r] = True
            start_cycles[i] = now
            warm = engine_last_end[r] == now and ready_cycles[i] + load_cycles <= now
            heappush(events, ((now + (warm_cycles[i] if warm else fixed_cycles[i])) * 3) * span + i)

    def start_transfers(r: int, now: int) -> None:
        # a queue whose ready head waits only on the descriptor stage gets one wake-up for when it frees
        q = r - FIRST_QUEUE
        fifo, head = fifos[r], heads[r]
        i = fifo[head]
        while not waiting[i] and in_flight[q] < outstanding:
            free = descriptor_free[q]
            if free > now:
                if woken[q] != free:
                    woken[q] = free
                    heappush(events, (free * 3 + _QUEUE_FREE) * span + r)
                break
            head += 1
            in_flight[q] += 1
            start_cycles[i] = now
            free = descriptor_free[q] = now + fixed_cycles[i]
            heappush(events, ((free + latency) * 3 + _DATA_START) * span + i)
            i = fifo[head]
        heads[r] = head

    def complete(first: int, now: int) -> None:
        # first, and every Release that was waiting only on it (or on such a Release), complete now
        stack = [first]
        while stack:
            i = stack.pop()
            end_cycles[i] = now
            for dependent in dependents[i]:
                waiting[dependent] -= 1
                if not waiting[dependent]:
                    ready_cycles[dependent] = now
                    r = resource[dependent]
                    if r == NO_RESOURCE:
                        start_cycles[dependent] = now
                        stack.append(dependent)
                    elif r < FIRST_QUEUE:
                        start_engine(r, now)
                    else:
                        start_transfers(r, now)
            r = resource[i]
            if r == NO_RESOURCE:
                continue
            if r < FIRST_QUEUE:
                engine_busy[r] = False
                engine_last_end[r] = now
                start_engine(r, now)
            else:
                in_flight[r - FIRST_QUEUE] -= 1
                start_transfers(r, now)

    for i in [i for i in range(size) if resource[i] == NO_RESOURCE and not waiting[i]]:  # before any completes
        start_cycles[i] = 0
        complete(i, 0)
    for r in range(len(fifos)):
        (start_engine if r < FIRST_QUEUE else start_transfers)(r, 0)
    moving = bandwidth.moving
    advance, add, pop_finished = bandwidth.advance, bandwidth.add, bandwidth.pop_finished
    while True:
        if moving and (not events or bandwidth.next_finish <= events[0] // span3):
            finish = bandwidth.next_finish
            done = math.ceil(finish - EPS_ABS - EPS_REL * finish) * span3
            for i in pop_finished():
                heappush(events, done + i)
            continue
        if not events:
            break
        now, subject = divmod(heappop(events), span)
        now, kind = divmod(now, 3)
        if kind == _COMPLETE:
            complete(subject, now)
        elif kind == _DATA_START:
            advance(now)
            add(subject, burst_bytes[subject], resource[subject] - FIRST_QUEUE)
        else:
            start_transfers(subject, now)
    if -1 in end_cycles:  # unreachable for a valid Program: deps point backwards, so the lowest pending one can run
        raise RuntimeError(f"timing: instruction {end_cycles.index(-1)} never completed")
    return start_cycles, end_cycles
