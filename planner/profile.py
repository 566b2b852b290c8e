"""`scratchplan profile`: a model's compute and memory signature per layer, on several machines.

A **layer** is a fusion group or a single op, read off the program: ops whose instructions touch the buffers of one
fusion group (staging names them `group<N>.`) form one layer; an op staged on its own is a layer alone.

**Cycles are attributed so that they add up exactly to the total.** Layers are taken in program order, and each is
charged the cycles by which it pushes the program's running finish time forward: `max(finish so far, end of its
last instruction) - finish so far`. A layer that runs entirely in the shadow of an earlier one (its DMA hidden
behind that one's compute) is charged 0; the charges telescope to the completion of the last instruction, which is
`total_cycles`.

A layer is **compute-bound** when its busiest engine's compute cycles are at least the cycles its DRAM bytes take at
the full bandwidth, else **memory-bound**. Its arithmetic intensity is its MACs plus element operations per DRAM
byte (None when it moves nothing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from planner import api
from simulator.isa import Compute, DmaLoad, DmaStore, Program
from simulator.machine import MachineConfig
from simulator.timing import SimResult


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    op_type: str
    ops: tuple[str, ...]
    cycles: int            # attributed: the layer's push of the running finish time (they sum to the total)
    span_cycles: int       # first start to last end of its instructions
    dram_bytes: int
    macs: int
    elem_ops: int
    compute_cycles: int    # its busiest engine's busy cycles
    memory_cycles: int     # its DRAM bytes at the full bandwidth

    @property
    def bound(self) -> str:
        return "compute" if self.compute_cycles >= self.memory_cycles else "memory"

    @property
    def arithmetic_intensity(self) -> float | None:
        return (self.macs + self.elem_ops) / self.dram_bytes if self.dram_bytes else None


def layer_ops(program: Program) -> list[tuple[str, ...]]:
    """The ops of each layer, in order of their first instruction: ops that touch buffers of one fusion group (the
    staging names them `group<N>.`) are one layer; any other op is a layer alone."""
    layer_of: dict[str, str] = {}
    order: dict[str, list[str]] = {}
    for instruction in program.instructions:
        name = _op_of(instruction)
        if not name:
            continue
        groups = [b.split(".", 1)[0] for b in _buffers(instruction) if b.startswith("group") and "." in b]
        if name not in layer_of:
            layer_of[name] = groups[0] if groups else f"op:{name}"
            order.setdefault(layer_of[name], []).append(name)
    return [tuple(ops) for ops in order.values()]


def layers(program: Program, result: SimResult, machine: MachineConfig) -> list[Layer]:
    """The program's layers with their attributed cycles (which sum to `result.stats.total_cycles`)."""
    groups = layer_ops(program)
    layer_of = {op: index for index, ops in enumerate(groups) for op in ops}
    end = [0] * len(groups)
    start = [math.inf] * len(groups)
    moved = [0] * len(groups)
    work = [[0, 0] for _ in groups]
    busy = [{"tensor": 0, "vector": 0} for _ in groups]
    sizes = {tensor.name: tensor.elem_bytes for tensor in program.tensors}
    for i, instruction in enumerate(program.instructions):
        name = _op_of(instruction)
        if not name:
            continue
        k = layer_of[name]
        end[k] = max(end[k], result.end_cycles[i])
        start[k] = min(start[k], result.start_cycles[i])
        if isinstance(instruction, Compute):
            work[k][0] += instruction.macs
            work[k][1] += instruction.elem_ops
            busy[k][instruction.engine] += result.end_cycles[i] - result.start_cycles[i]
        elif isinstance(instruction, (DmaLoad, DmaStore)):
            moved[k] += instruction.box.numel * sizes[instruction.tensor]
    types = {i.node: i.op_type for i in program.instructions if isinstance(i, Compute)}
    found, finish = [], 0
    for k, ops in enumerate(groups):
        charged = max(finish, end[k]) - finish
        finish = max(finish, end[k])
        op_types = [types.get(op, "?") for op in ops]
        found.append(Layer(name=ops[0] if len(ops) == 1 else f"{ops[0]}..{ops[-1]}",
                           op_type="+".join(dict.fromkeys(op_types)), ops=ops, cycles=charged,
                           span_cycles=int(end[k] - start[k]) if ops else 0, dram_bytes=moved[k], macs=work[k][0],
                           elem_ops=work[k][1], compute_cycles=max(busy[k].values()),
                           memory_cycles=math.ceil(moved[k] / machine.dram.bandwidth_bytes_per_cycle)))
    return found


def profile(model: api.ModelLike | api.Model, machines: Sequence[api.MachineLike], *, strategy: str = "fused",
            ) -> dict[str, Any]:
    """`{"model", "machines": [{"name", "total_cycles", "dram_bytes", "layers": [...]}]}` for one model."""
    loaded = api.load(model)
    entries = []
    for spec in machines:
        machine = api.machine(spec)
        program = api.plan(loaded, machine, strategy=strategy)
        result = api.simulate(program, machine)
        found = layers(program, result, machine)
        entries.append({
            "name": machine.name, "total_cycles": result.stats.total_cycles,
            "dram_bytes": result.stats.dram_bytes_read + result.stats.dram_bytes_written,
            "layers": [{"name": layer.name, "op_type": layer.op_type, "ops": list(layer.ops), "cycles": layer.cycles,
                        "span_cycles": layer.span_cycles, "dram_bytes": layer.dram_bytes, "macs": layer.macs,
                        "elem_ops": layer.elem_ops, "arithmetic_intensity": layer.arithmetic_intensity,
                        "compute_cycles": layer.compute_cycles, "memory_cycles": layer.memory_cycles,
                        "bound": layer.bound} for layer in found]})
    return {"model": loaded.name, "strategy": strategy, "machines": entries}


def format_profile(documents: Sequence[dict[str, Any]]) -> str:
    """Per machine, each model's layers, then the totals of every model on every machine side by side."""
    lines = []
    for column in range(len(documents[0]["machines"])):
        for document in documents:
            machine = document["machines"][column]
            lines.append(f"{document['model']} on {machine['name']} ({document['strategy']})")
            lines.append(f"  {'layer':<40}{'op type':<28}{'cycles':>12}{'DRAM bytes':>14}{'ops/byte':>10}  bound")
            for layer in machine["layers"]:
                intensity = layer["arithmetic_intensity"]
                lines.append(f"  {layer['name'][:39]:<40}{layer['op_type'][:27]:<28}{layer['cycles']:>12,}"
                             f"{layer['dram_bytes']:>14,}{'-' if intensity is None else f'{intensity:.1f}':>10}"
                             f"  {layer['bound']}")
            lines.append(f"  {'total':<68}{machine['total_cycles']:>12,}{machine['dram_bytes']:>14,}")
        lines.append("")
    header = f"{'machine':<20}" + "".join(f"{d['model'][:24] + ' cycles':>32}{'DRAM bytes':>14}" for d in documents)
    lines.append(header)
    for column, entry in enumerate(documents[0]["machines"]):
        row = f"{entry['name']:<20}"
        for document in documents:
            machine = document["machines"][column]
            row += f"{machine['total_cycles']:>32,}{machine['dram_bytes']:>14,}"
        if len(documents) == 2:
            a, b = (d["machines"][column] for d in documents)
            row += f"   second/first: cycles {b['total_cycles'] / max(a['total_cycles'], 1):.2f}x, bytes " \
                   f"{b['dram_bytes'] / max(a['dram_bytes'], 1):.2f}x"
        lines.append(row)
    return "\n".join(lines) + "\n"


def _buffers(instruction: object) -> list[str]:
    if isinstance(instruction, (DmaLoad, DmaStore)):
        return [instruction.buffer]
    if isinstance(instruction, Compute):
        return [instruction.output.buffer, *(operand.buffer for operand in instruction.operands)]
    return []


def _op_of(instruction: object) -> str:
    if isinstance(instruction, Compute):
        return instruction.node
    if isinstance(instruction, (DmaLoad, DmaStore)):
        return instruction.op
    return ""
