"""Lower bounds every plan is measured against.

- compulsory traffic: every constant and model input an op reads, once, and every model output, once;
- roofline cycles: the larger of the compute-bound time (tensor and vector engines each at their peak rate, running
  in parallel) and the time to move the compulsory bytes at the full DRAM bandwidth;
- best unfused traffic (on request, as it searches every op's tilings): each op alone at its cheapest tiling that
  fits the scratchpad (`planner.best_unfused`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from fractions import Fraction

from planner.best_unfused import best_unfused
from planner.inspect import totals
from planner.stmt import LoweredGraph
from simulator.isa import Compute, DmaGather, DmaLoad, Program
from simulator.machine import MachineConfig, mac_dtype


@dataclass(frozen=True, slots=True)
class Bounds:
    compulsory_bytes: int
    compute_cycles: int
    memory_cycles: int
    best_unfused_bytes: int | None = None  # None: not computed (or not computable, from a plan file alone)

    @property
    def roofline_cycles(self) -> int:
        return max(self.compute_cycles, self.memory_cycles)


def bounds(lowered: LoweredGraph, machine: MachineConfig, *, with_best_unfused: bool = False) -> Bounds:
    """Compulsory bytes and roofline cycles of a lowered model on a machine, and the best unfused bytes when asked."""
    dtype = lowered.graph.planning_dtype or "fp32"
    macs = [(stmt.macs, mac_dtype(stmt.op_type, dtype)) for stmt in lowered.statements if stmt.engine == "tensor"]
    elem_ops = sum(stmt.elem_ops for stmt in lowered.statements if stmt.engine != "tensor")
    found = _bounds(totals(lowered).compulsory_bytes, macs, elem_ops, machine)
    if not with_best_unfused:
        return found
    return dataclasses.replace(found, best_unfused_bytes=best_unfused(lowered, machine).dram_bytes)


def program_bounds(program: Program, machine: MachineConfig) -> Bounds:
    """The same bounds read off a plan file: the compulsory traffic the planner recorded in it, and the work of its
    computes."""
    loaded = {i.tensor for i in program.instructions if isinstance(i, DmaLoad)} | {
        i.table for i in program.instructions if isinstance(i, DmaGather)}
    compulsory = program.compulsory_bytes or sum(  # a plan file without the bound: whole tensors, an upper estimate
        t.nbytes for t in program.tensors if (t.role in ("input", "constant") and t.name in loaded)
        or t.name in program.outputs)
    computes = [i for i in program.instructions if isinstance(i, Compute)]
    macs = [(c.macs, mac_dtype(c.op_type, program.dtype)) for c in computes if c.engine == "tensor"]
    elem_ops = sum(c.elem_ops for c in computes if c.engine != "tensor")
    return _bounds(compulsory, macs, elem_ops, machine)


def _bounds(compulsory: int, macs: list[tuple[int, str]], elem_ops: int, machine: MachineConfig) -> Bounds:
    # Each op's MACs at the rate of its dtype (integer ops at the int8 rate), one after another on the engine.
    rates = machine.tensor_engine.macs_per_cycle
    per_dtype = {dtype: sum(m for m, d in macs if d == dtype) for _, dtype in macs}
    compute = max(math.ceil(sum(Fraction(total, rates[dtype]) for dtype, total in per_dtype.items())),  # exact
                  math.ceil(elem_ops / machine.vector_engine.elements_per_cycle))
    return Bounds(compulsory, compute, math.ceil(compulsory / machine.dram.bandwidth_bytes_per_cycle))
