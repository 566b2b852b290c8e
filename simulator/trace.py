"""A timed program as a Chrome / Perfetto trace (the JSON trace-event format; open it in ui.perfetto.dev).

Time is in cycles: the format's timestamps are microseconds, so one "us" on the timeline is one cycle. That keeps
every event on exact integers (real time at a GHz clock would need sub-nanosecond resolution, which Perfetto rounds
away); `otherData.clock_hz` gives the clock to convert.
"""

from __future__ import annotations

import heapq
from typing import Any

from simulator.dma import transfer
from simulator.isa import Compute, DmaGather, DmaLoad, DmaStore, Program, Release
from simulator.stats import scratchpad_timeline
from simulator.timing import SimResult, gather_bytes

_PID = 1


def chrome_trace(program: Program, result: SimResult) -> dict[str, Any]:
    """Trace events for `program` as `result` timed it: one track per engine (`tensor`, `vector`), one per in-flight
    slot of each DMA queue (`dma0.0`, `dma0.1`...: the transfers of a queue overlap, and events on one track must
    nest), a `release` track of instant events, and a `scratchpad bytes` counter of live buffer bytes.

    `json.dump(chrome_trace(program, simulate(program, machine)), file)` writes a file Perfetto opens.
    """
    machine = result.machine
    tensors = {tensor.name: tensor for tensor in program.tensors}
    tracks: dict[str, int] = {}

    def track(name: str) -> int:
        return tracks.setdefault(name, len(tracks) + 1)

    for name in ("tensor", "vector", *(f"dma{q}.0" for q in range(machine.dma.engines)), "release"):
        track(name)
    slots: dict[str, list[tuple[int, int]]] = {}  # queue -> heap of (end cycle, slot) of its transfers so far
    events: list[dict[str, Any]] = []
    for i, instruction in enumerate(program.instructions):
        start, end, resource = result.start_cycles[i], result.end_cycles[i], result.resources[i]
        if isinstance(instruction, Release):
            events.append({"name": f"release {instruction.buffer}", "ph": "i", "s": "t", "ts": start, "pid": _PID,
                           "tid": track("release"), "args": {"id": i, "buffer": instruction.buffer}})
            continue
        if isinstance(instruction, Compute):
            name = instruction.node or instruction.op_type
            tid = track(resource)
            args: dict[str, Any] = {"id": i, "node": instruction.node, "op_type": instruction.op_type,
                                    "cycles": end - start, "compute_cycles": end - start,
                                    "output": instruction.output.buffer}
            if instruction.mnk:
                args["mnk"] = list(instruction.mnk)
            args |= {"macs": instruction.macs} if instruction.engine == "tensor" else {"elem_ops": instruction.elem_ops}
        elif isinstance(instruction, DmaGather):
            name = f"gather {instruction.table}"
            tid = track(f"{resource}.{_slot(slots.setdefault(resource, []), start, end)}")
            table = tensors[instruction.table]
            runs, payload, burst = gather_bytes(table.shape, table.elem_bytes, instruction, machine.dma.burst_bytes)
            args = {"id": i, "op": instruction.op, "tensor": instruction.table, "buffer": instruction.output.buffer,
                    "rows": instruction.rows, "bytes": payload, "burst_bytes": burst, "runs": runs,
                    "cycles": end - start}
        else:
            kind = "load" if isinstance(instruction, DmaLoad) else "store"
            name = f"{kind} {instruction.tensor}"
            tid = track(f"{resource}.{_slot(slots.setdefault(resource, []), start, end)}")
            tensor = tensors[instruction.tensor]
            moved = transfer(tensor, instruction.box, machine.dma.burst_bytes, machine.dma.descriptor_dims)
            args = {"id": i, "op": instruction.op, "tensor": instruction.tensor, "buffer": instruction.buffer,
                    "box": [list(instruction.box.start), list(instruction.box.stop)], "bytes": moved.payload_bytes,
                    "burst_bytes": moved.burst_bytes, "runs": moved.runs, "descriptors": moved.descriptors,
                    "cycles": end - start}
        events.append({"name": name, "cat": _category(instruction), "ph": "X", "ts": start, "dur": end - start,
                       "pid": _PID, "tid": tid, "args": args})
    for cycle, live_bytes in scratchpad_timeline(program, machine, result.start_cycles, result.end_cycles):
        events.append({"name": "scratchpad bytes", "ph": "C", "ts": cycle, "pid": _PID, "args": {"bytes": live_bytes}})
    metadata: list[dict[str, Any]] = [{"name": "process_name", "ph": "M", "pid": _PID,
                                       "args": {"name": f"{program.model} ({program.strategy}) on {machine.name}"}}]
    for name, tid in tracks.items():
        metadata.append({"name": "thread_name", "ph": "M", "pid": _PID, "tid": tid, "args": {"name": name}})
        metadata.append({"name": "thread_sort_index", "ph": "M", "pid": _PID, "tid": tid, "args": {"sort_index": tid}})
    return {"traceEvents": metadata + events,
            "otherData": {"time_unit": "cycles (shown as us)", "clock_hz": machine.clock_hz, "machine": machine.name,
                          "total_cycles": result.stats.total_cycles,
                          "op_compute_cycles": {name: op.compute_cycles for name, op in result.stats.ops.items()}}}


def _slot(busy: list[tuple[int, int]], start: int, end: int) -> int:
    # transfers of a queue start in program order: reuse the lowest slot whose transfer has ended by `start`
    free = []
    while busy and busy[0][0] <= start:
        free.append(heapq.heappop(busy)[1])
    slot = min(free) if free else len(busy)
    for other in free:
        if other != slot:
            heapq.heappush(busy, (start, other))
    heapq.heappush(busy, (end, slot))
    return slot


def _category(instruction: Compute | DmaLoad | DmaStore | DmaGather) -> str:
    if isinstance(instruction, Compute):
        return instruction.engine
    if isinstance(instruction, DmaGather):
        return "gather"
    return "load" if isinstance(instruction, DmaLoad) else "store"
