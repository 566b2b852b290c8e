"""Event-driven, cycle-granular timing of a Program on a MachineConfig.

An instruction starts at the first cycle at which all its dependencies have completed and its resource can take
it; a resource takes its instructions in program order (no overtaking). The resources:

- the tensor and the vector engine each run one Compute at a time;
- DMA queue q (`DmaLoad.queue` / `DmaStore.queue`) starts a transfer when it has fewer than `dma.outstanding` in
  flight and its descriptor stage is free; transfers of one queue may complete in any order;
- a Release takes no resource and no time: it completes when its dependencies have.

Durations, in cycles:

- tensor engine, `mnk = (M, N, K)`: a systolic array's folds (`simulator.systolic`): weight-stationary,
  `ceil(K / rows) * ceil(N / cols)` folds of `load + fill + ceil(M * rows * cols / macs_per_cycle[dtype]) + drain`
  each; output-stationary swaps M and K. With two stationary buffers a tile pays load, fill and drain once, and a
  tile that follows another back to back with its operands ready `load` cycles early pays only its drain (warm);
  with no `mnk`: `fill + drain + ceil(macs / macs_per_cycle[dtype])`; `dtype` is the program's planning
  dtype, or int8 for the integer ops (`machine.mac_dtype`);
- vector engine: `max(1, ceil(elem_ops / elements_per_cycle))`;
- a DMA transfer of a box: the box splits into row-major contiguous DRAM runs (`contiguous_runs`), each moved in
  whole bursts. It holds the queue's descriptor stage for `descriptors * descriptor_cycles` (a descriptor moves a
  strided box of up to `dma.descriptor_dims` dimensions, `descriptors`), then waits `latency_cycles`,
  then moves its burst-rounded bytes as a fluid: every cycle the DRAM bandwidth is shared max-min fairly among all
  transfers moving data, each capped by its queue's engine bandwidth split evenly among that queue's moving
  transfers. With one moving transfer per queue this is `min(engine_bandwidth, dram_bandwidth / moving transfers)`.
  Shares change only when a transfer starts or stops moving data. A transfer completes at the first whole cycle at
  or after its last byte lands.

- an indirect DMA (`DmaGather`) of R rows is timed as a transfer of R copies of one row's slab: `R * runs per row`
  descriptors, one latency (the engine pipelines the row reads), and each row's runs burst-rounded on their own.

So a single load of N bytes in one run, N a multiple of the burst, with no descriptor cost, takes
`latency + N / min(engine_bandwidth, dram_bandwidth)` cycles.

Processor sharing means that delaying one transfer can speed up another that shares the bandwidth: adding a
dependency can make a program faster when transfers contend. Without contention (one transfer in flight per queue,
DRAM bandwidth at least the sum of the engines') the timing is monotone in every dependency.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

from simulator.isa import Box, Compute, DmaGather, DmaLoad, DmaStore, Operand, Program, Release
from simulator.machine import MachineConfig, mac_dtype
from simulator_reference import systolic
from simulator_reference.bandwidth import EPS_ABS, EPS_REL, Bandwidth
from simulator_reference.energy import Energy, program_energy
from simulator_reference.stats import SimStats, collect_stats

_TENSOR, _VECTOR, _FIRST_QUEUE, _NO_RESOURCE = 0, 1, 2, -1
_COMPLETE, _DATA_START, _QUEUE_FREE = 0, 1, 2  # event kinds, in the order they are handled within a cycle


class TimingError(ValueError):
    """A program the timing model cannot run (a DMA queue the machine lacks, an unknown tensor or buffer, a dtype
    the tensor engine has no rate for); the message names the instruction."""


@dataclass(frozen=True, slots=True)
class SimResult:
    """The schedule: `start_cycles[i]`, `end_cycles[i]` and `resources[i]` (`tensor`, `vector`, `dma<q>`, or "" for
    a Release) of instruction i, and the stats read off it."""

    stats: SimStats
    start_cycles: tuple[int, ...]
    end_cycles: tuple[int, ...]
    resources: tuple[str, ...]
    machine: MachineConfig
    energy: Energy


def contiguous_runs(shape: Sequence[int], box: Box) -> int:
    """How many contiguous row-major DRAM runs `box` of a tensor of `shape` makes: the product of the box's extents
    over the axes before the outermost axis from which on the box is contiguous.

    >>> contiguous_runs((4, 5, 6), Box((0, 0, 0), (2, 3, 6)))  # two rows of 3 x 6 elements
    2
    >>> contiguous_runs((4, 5, 6), Box((1, 2, 0), (3, 3, 4)))  # 2 x 1 runs of 4 elements
    2
    >>> contiguous_runs((4, 5, 6), Box((1, 0, 0), (3, 5, 6)))  # rows 1 and 2 entirely: one run
    1
    """
    extents = box.shape
    axis = len(shape) - 1
    while axis > 0 and extents[axis] == shape[axis]:
        axis -= 1
    return math.prod(extents[:max(axis, 0)])


def descriptors(shape: Sequence[int], box: Box, descriptor_dims: int) -> int:
    """How many DMA descriptors move `box` of a tensor of `shape` when one descriptor moves a strided box of up to
    `descriptor_dims` dimensions: the contiguous run is the innermost dimension, then each outer axis the box spans
    more than once is a strided dimension (two neighbours merge into one when the box covers the inner one whole, as
    their addresses then step by one stride). The outermost dimensions beyond what one descriptor holds repeat it.
    With `descriptor_dims` 1 this is `contiguous_runs`.

    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 3, 6)), 1)  # 2 rows of 3 x 6 contiguous elements: 2 runs
    2
    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 3, 6)), 2)  # a run and one strided dim (2 rows)
    1
    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 3, 4)), 2)  # a run of 4, then 2 x 3 strided: 2 descriptors
    2
    >>> descriptors((4, 5, 6), Box((0, 0, 0), (2, 5, 4)), 2)  # axes 0 and 1 merge (axis 1 whole): 10 rows, 1 dim
    1
    """
    extents = box.shape
    axis = len(shape) - 1
    while axis > 0 and extents[axis] == shape[axis]:
        axis -= 1
    strides = [math.prod(shape[a + 1:]) for a in range(axis)]
    strided: list[list[int]] = []  # [extent, stride] of the outer dims the box spans, outermost first, merged
    for outer in range(axis):
        if extents[outer] == 1:
            continue
        if strided and strided[-1][1] == extents[outer] * strides[outer]:
            strided[-1] = [strided[-1][0] * extents[outer], strides[outer]]
        else:
            strided.append([extents[outer], strides[outer]])
    return math.prod(extent for extent, _ in strided[:max(0, len(strided) - (descriptor_dims - 1))])


def transfer_bytes(tensor_shape: Sequence[int], elem_bytes: int, box: Box, burst_bytes: int) -> tuple[int, int, int]:
    """(runs, payload bytes, burst-rounded bytes) of a transfer of `box`.

    >>> transfer_bytes((4, 6), 2, Box((0, 0), (4, 3)), 64)  # 4 runs of 6 bytes, each one 64-byte burst
    (4, 24, 256)
    """
    runs = contiguous_runs(tensor_shape, box)
    payload = box.numel * elem_bytes
    return runs, payload, runs * -(-(payload // runs) // burst_bytes) * burst_bytes


def gather_bytes(table_shape: Sequence[int], elem_bytes: int, gather: DmaGather, burst_bytes: int,
                 ) -> tuple[int, int, int]:
    """(runs, payload bytes, burst-rounded bytes) of an indirect DMA: its rows, each moved like a box of its own.

    >>> from simulator.isa import Operand
    >>> g = DmaGather(0, (), 0, "emb", 0, Box((0, 0), (100, 6)), Operand("ids", Box((0,), (3,)), "b", (0,)),
    ...               Operand("y", Box((0, 0), (3, 6)), "o", (0, 0)))
    >>> gather_bytes((100, 6), 4, g, 64)  # 3 rows of 24 bytes, each one 64-byte burst
    (3, 72, 192)
    """
    runs, payload, burst = transfer_bytes(table_shape, elem_bytes, gather.row_box, burst_bytes)
    return runs * gather.rows, payload * gather.rows, burst * gather.rows


def compute_cycles(compute: Compute, machine: MachineConfig, dtype: str, *, warm: bool = False) -> int:
    """Cycles one Compute occupies its engine (formulas in the module docstring); `warm`: it follows another tensor
    tile back to back with its operands ready early, so its first load and fill hid under that one."""
    if compute.engine == "vector":
        return max(1, -(-compute.elem_ops // machine.vector_engine.elements_per_cycle))
    engine = machine.tensor_engine
    dtype = mac_dtype(compute.op_type, dtype)
    macs_per_cycle = engine.macs_per_cycle.get(dtype)
    if macs_per_cycle is None:
        raise TimingError(f"instruction {compute.id}: the tensor engine has no MACs per cycle for dtype {dtype!r} "
                          f"(it has {', '.join(engine.macs_per_cycle) or 'none'})")
    if not compute.mnk:
        return systolic.macs_cycles(compute.macs, engine, dtype)
    if len(compute.mnk) != 3 or min(compute.mnk) <= 0:
        raise TimingError(f"instruction {compute.id}: mnk {compute.mnk} is not three positive extents (M, N, K)")
    m, n, k = compute.mnk
    return (systolic.warm_tensor_cycles if warm else systolic.tensor_cycles)((m, n, k), engine, dtype)


def simulate(program: Program, machine: MachineConfig) -> SimResult:
    """Time `program` on `machine`: `simulate(program, machine).stats.total_cycles` is its run time in cycles, and
    `chrome_trace(program, simulate(program, machine))` (in `simulator.trace`) draws it."""
    plan = _prepare(program, machine)
    start_cycles, end_cycles = _schedule(plan, machine)
    names = ("tensor", "vector", *(f"dma{q}" for q in range(machine.dma.engines)))
    resources = tuple(names[r] if r != _NO_RESOURCE else "" for r in plan.resource)
    stats = collect_stats(program, machine, start_cycles, end_cycles, resources, plan.payload_bytes,
                          plan.burst_bytes)
    energy = program_energy(program, machine.energy, plan.payload_bytes, plan.burst_bytes, plan.descriptors)
    return SimResult(stats, tuple(start_cycles), tuple(end_cycles), resources, machine, energy)


@dataclass(slots=True)
class _Plan:
    resource: list[int]        # _TENSOR, _VECTOR, _FIRST_QUEUE + queue, or _NO_RESOURCE
    fixed_cycles: list[int]    # compute cycles, or a transfer's descriptor cycles
    warm_cycles: list[int]     # a tensor tile's cycles when warm (see compute_cycles); fixed_cycles otherwise
    burst_bytes: list[int]     # bytes a transfer moves through DRAM (0 otherwise)
    payload_bytes: list[int]
    deps: list[tuple[int, ...]]
    descriptors: list[int]     # a transfer's DMA descriptors (0 otherwise)


def _prepare(program: Program, machine: MachineConfig) -> _Plan:
    # One pass with the arithmetic of transfer_bytes, descriptors and compute_cycles inlined or memoised: this loop
    # and _schedule are the simulator's hot path (benchmarks/simulator_speed.py).
    tensors = {tensor.name: tensor for tensor in program.tensors}
    buffers = {buffer.name for buffer in program.buffers}
    dma = machine.dma
    burst_size, descriptor_cycles, descriptor_dims = dma.burst_bytes, dma.descriptor_cycles, dma.descriptor_dims
    resources: list[int] = []
    fixed_cycles: list[int] = []
    warm_cycles: list[int] = []
    burst_bytes: list[int] = []
    payload_bytes: list[int] = []
    counts: list[int] = []
    two_buffers = machine.tensor_engine.stationary_buffers == 2
    compute_memo: dict[tuple[object, ...], tuple[int, int]] = {}
    dtype = program.dtype

    def unknown_buffer(instruction_id: int, name: str) -> TimingError:
        return TimingError(f"instruction {instruction_id}: unknown buffer {name!r} "
                           f"(known: {', '.join(sorted(buffers)) or 'none'})")

    for instruction in program.instructions:
        kind = type(instruction)
        if kind is DmaLoad or kind is DmaStore:
            assert isinstance(instruction, (DmaLoad, DmaStore))
            if not 0 <= instruction.queue < dma.engines:
                raise TimingError(f"instruction {instruction.id}: DMA queue {instruction.queue} is out of range "
                                  f"(the machine has {dma.engines} DMA engines)")
            tensor = tensors.get(instruction.tensor)
            if tensor is None:
                raise TimingError(f"instruction {instruction.id}: unknown tensor {instruction.tensor!r} "
                                  f"(known: {', '.join(sorted(tensors)) or 'none'})")
            box, shape = instruction.box, tensor.shape
            if len(box.start) != len(shape) or min(box.start, default=0) < 0 or any(
                    stop > extent for stop, extent in zip(box.stop, shape, strict=True)):
                raise TimingError(f"instruction {instruction.id}: box {list(box.start)}..{list(box.stop)} is not "
                                  f"inside tensor {tensor.name} of shape {list(shape)}")
            if instruction.buffer not in buffers:
                raise unknown_buffer(instruction.id, instruction.buffer)
            extents = [b - a for a, b in zip(box.start, box.stop, strict=True)]
            axis = len(shape) - 1  # contiguous_runs, inline
            while axis > 0 and extents[axis] == shape[axis]:
                axis -= 1
            runs = math.prod(extents[:max(axis, 0)])
            payload = math.prod(extents) * tensor.elem_bytes
            count = runs if descriptor_dims == 1 else descriptors(shape, box, descriptor_dims)
            resources.append(_FIRST_QUEUE + instruction.queue)
            fixed_cycles.append(count * descriptor_cycles)
            warm_cycles.append(count * descriptor_cycles)
            burst_bytes.append(runs * -(-(payload // runs) // burst_size) * burst_size)
            payload_bytes.append(payload)
            counts.append(count)
            continue
        if kind is DmaGather:
            assert isinstance(instruction, DmaGather)
            if not 0 <= instruction.queue < dma.engines:
                raise TimingError(f"instruction {instruction.id}: DMA queue {instruction.queue} is out of range "
                                  f"(the machine has {dma.engines} DMA engines)")
            table = tensors.get(instruction.table)
            if table is None or len(table.shape) != len(instruction.window.start):
                raise TimingError(f"instruction {instruction.id}: table {instruction.table!r} is not a tensor of "
                                  f"the window's rank")
            for operand in (instruction.indices, instruction.output):
                if operand.buffer not in buffers:
                    raise unknown_buffer(instruction.id, operand.buffer)
            runs, payload, burst = gather_bytes(table.shape, table.elem_bytes, instruction, dma.burst_bytes)
            # every row sits at its own address: a descriptor never spans two rows
            count = runs if descriptor_dims == 1 else instruction.rows * descriptors(
                table.shape, instruction.row_box, descriptor_dims)
            resources.append(_FIRST_QUEUE + instruction.queue)
            fixed_cycles.append(count * descriptor_cycles)
            warm_cycles.append(count * descriptor_cycles)
            burst_bytes.append(burst)
            payload_bytes.append(payload)
            counts.append(count)
            continue
        if kind is Compute:
            assert isinstance(instruction, Compute)
            for slot in instruction.inputs:
                if type(slot) is Operand and slot.buffer not in buffers:
                    raise unknown_buffer(instruction.id, slot.buffer)
            if instruction.output.buffer not in buffers:
                raise unknown_buffer(instruction.id, instruction.output.buffer)
            key = (instruction.engine, instruction.mnk, instruction.macs, instruction.elem_ops)
            cycles = compute_memo.get(key)
            if cycles is None:
                fixed = compute_cycles(instruction, machine, dtype)
                warm = (compute_cycles(instruction, machine, dtype, warm=True)
                        if two_buffers and instruction.engine == "tensor" and instruction.mnk else fixed)
                cycles = compute_memo[key] = (fixed, warm)
            resources.append(_TENSOR if instruction.engine == "tensor" else _VECTOR)
            fixed_cycles.append(cycles[0])
            warm_cycles.append(cycles[1])
        else:
            assert isinstance(instruction, Release)
            if instruction.buffer not in buffers:
                raise unknown_buffer(instruction.id, instruction.buffer)
            resources.append(_NO_RESOURCE)
            fixed_cycles.append(0)
            warm_cycles.append(0)
        burst_bytes.append(0)
        payload_bytes.append(0)
        counts.append(0)
    return _Plan(resources, fixed_cycles, warm_cycles, burst_bytes, payload_bytes,
                 [instruction.deps for instruction in program.instructions], counts)


def _schedule(plan: _Plan, machine: MachineConfig) -> tuple[list[int], list[int]]:
    size = len(plan.resource)
    resource, fixed_cycles, burst_bytes = plan.resource, plan.fixed_cycles, plan.burst_bytes
    warm_cycles, load_cycles = plan.warm_cycles, machine.tensor_engine.load_cycles
    latency, outstanding = machine.dram.latency_cycles, machine.dma.outstanding
    fifos: list[list[int]] = [[] for _ in range(_FIRST_QUEUE + machine.dma.engines)]
    dependents: list[list[int]] = [[] for _ in range(size)]
    waiting = [0] * size  # dependencies not yet completed
    for i, deps in enumerate(plan.deps):
        if resource[i] != _NO_RESOURCE:
            fifos[resource[i]].append(i)
        if len(deps) == 1:  # the common case, without building a set
            waiting[i] = 1
            dependents[deps[0]].append(i)
        elif deps:
            unique = set(deps)
            waiting[i] = len(unique)
            for dep in unique:
                dependents[dep].append(i)
    heads = [0] * len(fifos)
    engine_busy = [False, False]
    engine_last_end = [-1, -1]  # when each engine's previous compute ended
    ready_cycles = [0] * size   # when each instruction's last dependency completed
    in_flight = [0] * machine.dma.engines
    descriptor_free = [0] * machine.dma.engines  # cycle at which a queue's descriptor stage frees
    start_cycles, end_cycles = [-1] * size, [-1] * size
    events: list[tuple[int, int, int]] = []  # (cycle, kind, instruction or resource)
    bandwidth = Bandwidth(machine)

    def try_start(r: int, now: int) -> None:
        fifo = fifos[r]
        if r < _FIRST_QUEUE:
            if not engine_busy[r] and heads[r] < len(fifo) and not waiting[i := fifo[heads[r]]]:
                heads[r] += 1
                engine_busy[r] = True
                start_cycles[i] = now
                warm = engine_last_end[r] == now and ready_cycles[i] + load_cycles <= now
                heapq.heappush(events, (now + (warm_cycles[i] if warm else fixed_cycles[i]), _COMPLETE, i))
            return
        q = r - _FIRST_QUEUE
        while (heads[r] < len(fifo) and not waiting[i := fifo[heads[r]]] and in_flight[q] < outstanding
               and descriptor_free[q] <= now):
            heads[r] += 1
            in_flight[q] += 1
            start_cycles[i] = now
            descriptor_free[q] = now + fixed_cycles[i]
            if fixed_cycles[i]:
                heapq.heappush(events, (descriptor_free[q], _QUEUE_FREE, r))
            heapq.heappush(events, (descriptor_free[q] + latency, _DATA_START, i))

    def complete(first: int, now: int) -> None:
        stack = [first]
        while stack:
            i = stack.pop()
            end_cycles[i] = now
            for dependent in dependents[i]:
                waiting[dependent] -= 1
                if not waiting[dependent]:
                    ready_cycles[dependent] = now
                    if resource[dependent] == _NO_RESOURCE:
                        start_cycles[dependent] = now
                        stack.append(dependent)
                    else:
                        try_start(resource[dependent], now)
            r = resource[i]
            if r == _NO_RESOURCE:
                continue
            if r < _FIRST_QUEUE:
                engine_busy[r] = False
                engine_last_end[r] = now
            else:
                in_flight[r - _FIRST_QUEUE] -= 1
            try_start(r, now)

    for i in [i for i in range(size) if resource[i] == _NO_RESOURCE and not waiting[i]]:  # before any completes
        start_cycles[i] = 0
        complete(i, 0)
    for r in range(len(fifos)):
        try_start(r, 0)
    while True:
        if bandwidth.moving and (not events or bandwidth.next_finish <= events[0][0]):
            finish = bandwidth.next_finish
            done_cycle = math.ceil(finish - EPS_ABS - EPS_REL * finish)
            for i in bandwidth.pop_finished():
                heapq.heappush(events, (done_cycle, _COMPLETE, i))
            continue
        if not events:
            break
        now, kind, subject = heapq.heappop(events)
        if kind == _COMPLETE:
            complete(subject, now)
        elif kind == _DATA_START:
            bandwidth.advance(now)
            bandwidth.add(subject, burst_bytes[subject], resource[subject] - _FIRST_QUEUE)
        else:
            try_start(subject, now)
    if -1 in end_cycles:  # unreachable for a valid Program: deps point backwards, so the lowest pending one can run
        raise RuntimeError(f"timing: instruction {end_cycles.index(-1)} never completed")
    return start_cycles, end_cycles
