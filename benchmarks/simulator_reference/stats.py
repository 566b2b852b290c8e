"""What a timed program did: cycles, DRAM traffic, engine occupancy, DMA stalls, scratchpad peak, per-op spans.

Everything here is read off a finished schedule (each instruction's start and end cycle); `simulator.timing` makes
the schedule and calls `collect_stats`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simulator.isa import Compute, DmaGather, DmaLoad, DmaStore, Program, Release
from simulator.machine import MachineConfig


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
        document["ops"] = {name: {slot: getattr(op, slot) for slot in op.__slots__} for name, op in self.ops.items()}
        return document


def collect_stats(program: Program, machine: MachineConfig, start_cycles: Sequence[int], end_cycles: Sequence[int],
                  resources: Sequence[str], payload_bytes: Sequence[int], burst_bytes: Sequence[int]) -> SimStats:
    """The stats of a finished schedule; `payload_bytes` / `burst_bytes` are per instruction (0 for non-DMA)."""
    instructions = program.instructions
    busy = {"tensor": 0, "vector": 0} | {f"dma{q}": 0 for q in range(machine.dma.engines)}
    queue_covered = {f"dma{q}": 0 for q in range(machine.dma.engines)}  # end of the union of intervals so far
    bytes_read = bytes_written = burst_read = burst_written = transfers = 0
    for i, instruction in enumerate(instructions):
        resource, start, end = resources[i], start_cycles[i], end_cycles[i]
        if isinstance(instruction, Compute):
            busy[resource] += end - start
        elif isinstance(instruction, (DmaLoad, DmaStore, DmaGather)):
            transfers += 1
            if isinstance(instruction, (DmaLoad, DmaGather)):
                bytes_read += payload_bytes[i]
                burst_read += burst_bytes[i]
            else:
                bytes_written += payload_bytes[i]
                burst_written += burst_bytes[i]
            # transfers of a queue start in program order, so the union of their intervals grows left to right
            covered = queue_covered[resource]
            busy[resource] += max(0, end - max(start, covered))
            queue_covered[resource] = max(covered, end)
    stalls = _engine_stalls(program, start_cycles, end_cycles)
    return SimStats(total_cycles=max(end_cycles, default=0), dram_bytes_read=bytes_read,
                    dram_bytes_written=bytes_written, dram_burst_bytes=sum(burst_bytes),
                    dram_burst_bytes_read=burst_read, dram_burst_bytes_written=burst_written, dma_transfers=transfers,
                    busy_cycles=busy, stall_cycles=sum(stalls.values()), engine_stall_cycles=stalls,
                    peak_scratchpad_bytes=max((live for _, live in
                                               scratchpad_timeline(program, machine, start_cycles, end_cycles)),
                                              default=0),
                    ops=_op_stats(program, start_cycles, end_cycles, payload_bytes, burst_bytes))


def _engine_stalls(program: Program, start_cycles: Sequence[int], end_cycles: Sequence[int]) -> dict[str, int]:
    # settled[i]: when the non-DMA dependencies of i had completed (looking through Releases)
    settled = [0] * len(program.instructions)
    engine_free = {"tensor": 0, "vector": 0}
    stalls = {"tensor": 0, "vector": 0}
    for i, instruction in enumerate(program.instructions):
        if not isinstance(instruction, (Compute, Release)):
            continue
        ready = 0
        for dep in instruction.deps:
            source = program.instructions[dep]
            if isinstance(source, Compute):
                ready = max(ready, end_cycles[dep])
            elif isinstance(source, Release):
                ready = max(ready, settled[dep])
        settled[i] = ready
        if isinstance(instruction, Compute):
            stalls[instruction.engine] += start_cycles[i] - max(engine_free[instruction.engine], ready)
            engine_free[instruction.engine] = end_cycles[i]
    return stalls


def scratchpad_timeline(program: Program, machine: MachineConfig, start_cycles: Sequence[int],
                        end_cycles: Sequence[int]) -> list[tuple[int, int]]:
    """(cycle, live buffer bytes from that cycle on) at every cycle where the live set changes, in time order.

    A Release completing at cycle t frees its buffer before a write starting at t takes one (intervals are
    half-open), so two buffers that hand over at t never count together.
    """
    partitions = machine.scratchpad.partitions
    sizes = {b.name: b.partition_bytes(partitions) * b.partitions_used(partitions) for b in program.buffers}
    per_buffer: dict[str, list[tuple[int, int]]] = {}  # buffer -> (cycle, 0 = release end / 1 = write start)
    for i, instruction in enumerate(program.instructions):
        if isinstance(instruction, Release):
            per_buffer.setdefault(instruction.buffer, []).append((end_cycles[i], 0))
        elif isinstance(instruction, DmaLoad):
            per_buffer.setdefault(instruction.buffer, []).append((start_cycles[i], 1))
        elif isinstance(instruction, (Compute, DmaGather)):
            per_buffer.setdefault(instruction.output.buffer, []).append((start_cycles[i], 1))
    changes: list[tuple[int, int, int]] = []  # (cycle, 0 = free / 1 = take, bytes)
    for name, events in per_buffer.items():
        live = False
        for cycle, is_write in sorted(events):
            if is_write and not live:
                changes.append((cycle, 1, sizes[name]))
            elif not is_write and live:
                changes.append((cycle, 0, -sizes[name]))
            live = bool(is_write)
    changes.sort()
    timeline: list[tuple[int, int]] = []
    live_bytes = 0
    for cycle, _, delta in changes:
        live_bytes += delta
        if timeline and timeline[-1][0] == cycle:
            # the peak at a cycle is after its frees and its takes: takes sort last
            timeline[-1] = (cycle, live_bytes)
        else:
            timeline.append((cycle, live_bytes))
    return timeline


def _op_stats(program: Program, start_cycles: Sequence[int], end_cycles: Sequence[int],
              payload_bytes: Sequence[int], burst_bytes: Sequence[int]) -> dict[str, OpStats]:
    # name -> [first start, last end, bytes read, bytes written, burst bytes read, burst bytes written, compute cycles]
    spans: dict[str, list[int]] = {}
    for i, instruction in enumerate(program.instructions):
        if isinstance(instruction, Compute):
            name, column = instruction.node, -1
        elif isinstance(instruction, (DmaLoad, DmaGather)):
            name, column = instruction.op, 2
        elif isinstance(instruction, DmaStore):
            name, column = instruction.op, 3
        else:
            continue
        if not name:
            continue
        span = spans.setdefault(name, [start_cycles[i], end_cycles[i], 0, 0, 0, 0, 0])
        span[0], span[1] = min(span[0], start_cycles[i]), max(span[1], end_cycles[i])
        if column > 0:
            span[column] += payload_bytes[i]
            span[column + 2] += burst_bytes[i]
        else:
            span[6] += end_cycles[i] - start_cycles[i]
    return {name: OpStats(end - start, *counts) for name, (start, end, *counts) in spans.items()}
