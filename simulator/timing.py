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

The work splits by idea: `simulator.costs` prices every instruction once (and checks the program),
`simulator.events` runs the event loop over those prices, `simulator.bandwidth` is the DRAM fluid model, and
`simulator.stats` / `simulator.energy` read the figures off the finished schedule.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from simulator.box_costs import contiguous_runs, descriptors, gather_bytes, transfer_bytes
from simulator.costs import NO_RESOURCE, TimingError, compute_cycles, instruction_costs
from simulator.energy import Energy, program_energy
from simulator.events import schedule_arrays
from simulator.isa import Program
from simulator.machine import MachineConfig
from simulator.stats import SimStats, buffer_sizes, collect_stats

__all__ = ["SimResult", "TimingError", "compute_cycles", "contiguous_runs", "descriptors", "gather_bytes", "simulate",
           "transfer_bytes"]


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


def simulate(program: Program, machine: MachineConfig) -> SimResult:
    """Time `program` on `machine`: `simulate(program, machine).stats.total_cycles` is its run time in cycles, and
    `chrome_trace(program, simulate(program, machine))` (in `simulator.trace`) draws it.

    >>> from simulator.machine_file import load_machine
    >>> simulate(Program("m", "by-hand", "edge-npu", (), (), ()), load_machine("edge-npu")).stats.total_cycles
    0
    """
    with _no_cyclic_gc():
        costs = instruction_costs(program, machine)  # raises TimingError on a program the machine cannot run
        start, end = schedule_arrays(costs, machine)
        names = np.array(["", "tensor", "vector", *(f"dma{q}" for q in range(machine.dma.engines))], dtype=object)
        resources = tuple(names[costs.resource - NO_RESOURCE].tolist())
        stats = collect_stats(costs, machine, buffer_sizes(program, machine), start, end)
        return SimResult(stats, tuple(start.tolist()), tuple(end.tolist()), resources, machine,
                         program_energy(costs, machine.energy, program.dtype))


@contextlib.contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    # simulate allocates millions of small lists and tuples, and each burst of allocations would start the cyclic
    # collector, which walks every object alive (a large Program is millions): a third of the run time on a 3 x 10^5
    # instruction program. Nothing here makes a reference cycle, so reference counting frees it all anyway.
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
