"""The event loop of `simulator.events`, compiled with numba for large programs (the `fast` extra).

The same algorithm step for step: one heap of int keys `(cycle * 3 + kind) * span + subject`, FIFOs per resource,
lazy queue wake-ups, and the fluid DRAM model of `simulator.bandwidth` with the same float operations in the same
order (transfers kept in start order, as that model's dict keeps them), so both give the same cycles bit for bit
(`tests/simulator/test_timing_golden.py` runs both). State that Python keeps in closures lives here in arrays passed
to small compiled functions, which take no part in numba's reference counting, and the heap is an int64 array
(atomic reference counts on every call were most of the loop's time). `schedule` returns None when numba is not
installed, or when the program could run so long that an event key might not fit in 64 bits; the caller then runs
the Python loop.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.bandwidth import EPS_ABS, EPS_REL
from simulator.costs import FIRST_QUEUE, NO_RESOURCE, Costs
from simulator.event_heap import jit, numba, plain, pop, push
from simulator.machine import MachineConfig

_COMPLETE, _DATA_START, _QUEUE_FREE = 0, 1, 2
_KEY_LIMIT = 1 << 62


@plain
def _start_engine(r, now, s):  # type: ignore[no-untyped-def]
    (fifo, fifo_end, heads, waiting, busy, last_end, ready, start, fixed, warm, load_cycles, span, events) = s
    head = heads[r]
    if head >= fifo_end[r] or busy[r]:
        return
    i = fifo[head]
    if waiting[i]:
        return
    heads[r] = head + 1
    busy[r] = 1
    start[i] = now
    if last_end[r] == now and ready[i] + load_cycles <= now:
        push(events, ((now + warm[i]) * 3) * span + i)
    else:
        push(events, ((now + fixed[i]) * 3) * span + i)


@plain
def _start_transfers(r, now, t):  # type: ignore[no-untyped-def]
    (fifo, fifo_end, heads, waiting, in_flight, descriptor_free, woken, start, fixed, outstanding, latency, span,
     events) = t
    q = r - FIRST_QUEUE
    head = heads[r]
    while head < fifo_end[r]:
        i = fifo[head]
        if waiting[i] or in_flight[q] >= outstanding:
            break
        free = descriptor_free[q]
        if free > now:
            if woken[q] != free:
                woken[q] = free
                push(events, (free * 3 + _QUEUE_FREE) * span + r)
            break
        head += 1
        in_flight[q] += 1
        start[i] = now
        free = now + fixed[i]
        descriptor_free[q] = free
        push(events, ((free + latency) * 3 + _DATA_START) * span + i)
    heads[r] = head


@plain
def _complete(first, now, resource, dep_offsets, dep_targets, stack, end, s, t):  # type: ignore[no-untyped-def]
    waiting, busy, last_end, ready, start = s[3], s[4], s[5], s[6], s[7]
    in_flight = t[4]
    stack[0] = first
    top = 1
    while top:
        top -= 1
        i = stack[top]
        end[i] = now
        for position in range(dep_offsets[i], dep_offsets[i + 1]):
            dependent = dep_targets[position]
            waiting[dependent] -= 1
            if not waiting[dependent]:
                ready[dependent] = now
                r = resource[dependent]
                if r == NO_RESOURCE:
                    start[dependent] = now
                    stack[top] = dependent
                    top += 1
                elif r < FIRST_QUEUE:
                    _start_engine(r, now, s)
                else:
                    _start_transfers(r, now, t)
        r = resource[i]
        if r == NO_RESOURCE:
            continue
        if r < FIRST_QUEUE:
            busy[r] = 0
            last_end[r] = now
            _start_engine(r, now, s)
        else:
            in_flight[r - FIRST_QUEUE] -= 1
            _start_transfers(r, now, t)


@plain
def _share(moving, count, remaining, rate, queue_of, per_queue, clock, dram_rate, engine_rate, alone_rate, order,
           rates):  # type: ignore[no-untyped-def]
    # clock: [now, next finish, soonest]; the water-filling of Bandwidth._share
    if count == 1:
        i = moving[0]
        rate[i] = alone_rate
        clock[2] = i
        clock[1] = clock[0] + remaining[i] / alone_rate
        return
    queues = len(per_queue)
    # order: busy queues by (count, queue), largest first
    used = 0
    for queue in range(queues):
        if per_queue[queue]:
            position = used
            while position > 0:
                other = order[position - 1]
                if per_queue[other] > per_queue[queue] or (per_queue[other] == per_queue[queue] and other > queue):
                    break
                order[position] = other
                position -= 1
            order[position] = queue
            used += 1
    rates[:] = 0.0
    budget, left = dram_rate, count
    for position in range(used):
        queue = order[position]
        n = per_queue[queue]
        share = min(engine_rate / n, budget / left)
        rates[queue] = share
        budget -= share * n
        left -= n
    soonest = math.inf
    clock[2] = -1
    for k in range(count):
        i = moving[k]
        rate[i] = rates[queue_of[i]]
        finish = remaining[i] / rate[i]
        if finish < soonest:
            soonest = finish
            clock[2] = i
    clock[1] = clock[0] + soonest


@plain
def _advance(now, moving, count, remaining, rate, clock):  # type: ignore[no-untyped-def]
    elapsed = now - clock[0]
    if elapsed > 0:
        for k in range(count):
            i = moving[k]
            remaining[i] -= rate[i] * elapsed
    clock[0] = now


@jit
def _run(resource, fixed, warm, burst, dep_offsets, dep_targets, waiting, fifo, fifo_start, fifo_end, queues,
         load_cycles, latency, outstanding, dram_rate, engine_rate, eps_abs, eps_rel):  # type: ignore[no-untyped-def]
    size = len(resource)
    span = max(size, FIRST_QUEUE + queues) + 1
    span3 = 3 * span
    start = np.full(size, -1, dtype=np.int64)
    end = np.full(size, -1, dtype=np.int64)
    heads = fifo_start.copy()
    busy = np.zeros(2, dtype=np.int64)
    last_end = np.full(2, -1, dtype=np.int64)
    ready = np.zeros(size, dtype=np.int64)
    in_flight = np.zeros(queues, dtype=np.int64)
    descriptor_free = np.zeros(queues, dtype=np.int64)
    woken = np.full(queues, -1, dtype=np.int64)
    stack = np.empty(size + 1, dtype=np.int64)
    # the heap (see _push): an instruction has at most one event pending (its completion, or a transfer's data
    # start), a queue at most two wake-ups (one at the current cycle, one later: a new one is pushed only once the
    # descriptor stage moved, which it does only once the previous wake-up's cycle has come)
    events = np.zeros(1 + size + 2 * queues, dtype=np.int64)
    s = (fifo, fifo_end, heads, waiting, busy, last_end, ready, start, fixed, warm, load_cycles, span, events)
    t = (fifo, fifo_end, heads, waiting, in_flight, descriptor_free, woken, start, fixed, outstanding, latency, span,
         events)
    moving = np.empty(queues * outstanding + 1, dtype=np.int64)  # transfers moving data, in start order
    count = 0
    remaining = np.zeros(size)
    rate = np.zeros(size)
    queue_of = resource - FIRST_QUEUE
    per_queue = np.zeros(queues, dtype=np.int64)
    order = np.zeros(queues, dtype=np.int64)
    rates = np.zeros(queues)
    clock = np.array([0.0, math.inf, -1.0])  # [now, next finish, soonest]
    alone_rate = min(engine_rate / 1, dram_rate / 1)
    for i in range(size):
        if resource[i] == NO_RESOURCE and not waiting[i]:
            start[i] = 0
            _complete(i, 0, resource, dep_offsets, dep_targets, stack, end, s, t)
    for r in range(FIRST_QUEUE + queues):
        if r < FIRST_QUEUE:
            _start_engine(r, 0, s)
        else:
            _start_transfers(r, 0, t)
    while True:
        if count and (not events[0] or clock[1] <= events[1] // span3):
            finish = clock[1]
            done = np.int64(math.ceil(finish - eps_abs - eps_rel * finish)) * span3
            _advance(finish, moving, count, remaining, rate, clock)
            slack = eps_abs + eps_rel * clock[0]
            soonest = np.int64(clock[2])
            kept = 0
            for k in range(count):
                i = moving[k]
                if i == soonest or remaining[i] <= rate[i] * slack:
                    per_queue[queue_of[i]] -= 1
                    push(events, done + i)
                else:
                    moving[kept] = i
                    kept += 1
            count = kept
            if count:
                _share(moving, count, remaining, rate, queue_of, per_queue, clock, dram_rate, engine_rate,
                       alone_rate, order, rates)
            else:
                clock[1] = clock[0] + math.inf
                clock[2] = -1.0
            continue
        if not events[0]:
            break
        now, subject = divmod(pop(events), span)
        now, kind = divmod(now, 3)
        if kind == _COMPLETE:
            _complete(subject, now, resource, dep_offsets, dep_targets, stack, end, s, t)
        elif kind == _DATA_START:
            _advance(now, moving, count, remaining, rate, clock)
            moving[count] = subject
            count += 1
            remaining[subject] = float(burst[subject])
            per_queue[queue_of[subject]] += 1
            _share(moving, count, remaining, rate, queue_of, per_queue, clock, dram_rate, engine_rate, alone_rate,
                   order, rates)
        else:
            _start_transfers(subject, now, t)
    return start, end


def schedule(costs: Costs, machine: MachineConfig) -> tuple[list[int], list[int]] | None:
    """(start cycles, end cycles) as `simulator.events.schedule` gives them, or None (see the module docstring)."""
    result = schedule_arrays(costs, machine)
    return None if result is None else (result[0].tolist(), result[1].tolist())


def schedule_arrays(costs: Costs, machine: MachineConfig) -> tuple[np.ndarray, np.ndarray] | None:
    """`schedule` as int64 arrays."""
    if numba is None:
        return None
    size = len(costs.resource)
    resource, fixed, warm, burst = costs.resource, costs.fixed_cycles, costs.warm_cycles, costs.burst_bytes
    dram, dma = machine.dram, machine.dma
    slowest = min(dma.engine_bandwidth_bytes_per_cycle / dma.outstanding,
                  dram.bandwidth_bytes_per_cycle / (dma.engines * dma.outstanding))
    # no instruction waits longer than everything before it run one after another at the slowest share
    longest = int(fixed.sum()) + size * (dram.latency_cycles + 2) + int(burst.sum() / slowest) + 2
    longest *= 2  # and a margin
    if longest >= 1 << 53 or (longest * 3 + 3) * (max(size, FIRST_QUEUE + dma.engines) + 1) >= _KEY_LIMIT:
        return None
    sources, targets = costs.dep_sources, np.repeat(np.arange(size, dtype=np.int64), costs.dep_counts)
    # each dependency once, by (source, target): the order in which the Python loop lists dependents (targets are
    # in program order already, so a stable sort by source keeps them so, and puts a repeated dependency next to
    # its twin)
    order = np.argsort(sources, kind="stable")
    sources, targets = sources[order], targets[order]
    once = np.concatenate(([True], (sources[1:] != sources[:-1]) | (targets[1:] != targets[:-1])))
    sources, targets = sources[once], targets[once]
    dep_offsets = np.searchsorted(sources, np.arange(size + 1, dtype=np.int64))
    waiting = np.bincount(targets, minlength=size).astype(np.int64)
    fifo = np.flatnonzero(resource != NO_RESOURCE)
    fifo = fifo[np.argsort(resource[fifo], kind="stable")]
    bounds = np.searchsorted(resource[fifo], np.arange(FIRST_QUEUE + dma.engines + 1, dtype=np.int64))
    start, end = _run(resource, fixed, warm, burst, dep_offsets, targets, waiting, fifo, bounds[:-1].copy(),
                      bounds[1:].copy(), dma.engines, machine.tensor_engine.load_cycles, dram.latency_cycles,
                      dma.outstanding, float(dram.bandwidth_bytes_per_cycle),
                      float(dma.engine_bandwidth_bytes_per_cycle), EPS_ABS, EPS_REL)
    if (end < 0).any():
        raise RuntimeError(f"timing: instruction {int(np.argmax(end < 0))} never completed")
    return start, end
