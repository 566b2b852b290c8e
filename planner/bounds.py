"""Lower bounds every plan is measured against.

- compulsory traffic: every constant and model input an op reads, once, and every model output, once;
- roofline cycles: the larger of the compute-bound time (tensor and vector engines each at their peak rate, running
  in parallel) and the time to move the compulsory bytes at the full DRAM bandwidth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from planner.inspect import totals
from planner.stmt import LoweredGraph
from simulator.isa import Compute, DmaGather, DmaLoad, Program
from simulator.machine import MachineConfig


@dataclass(frozen=True, slots=True)
class Bounds:
    compulsory_bytes: int
    compute_cycles: int
    memory_cycles: int

    @property
    def roofline_cycles(self) -> int:
        return max(self.compute_cycles, self.memory_cycles)


def bounds(lowered: LoweredGraph, machine: MachineConfig) -> Bounds:
    """Compulsory bytes and roofline cycles of a lowered model on a machine."""
    macs = sum(stmt.macs for stmt in lowered.statements if stmt.engine == "tensor")
    elem_ops = sum(stmt.elem_ops for stmt in lowered.statements if stmt.engine != "tensor")
    return _bounds(totals(lowered).compulsory_bytes, macs, elem_ops, lowered.graph.planning_dtype or "fp32", machine)


def program_bounds(program: Program, machine: MachineConfig) -> Bounds:
    """The same bounds read off a plan file: the compulsory traffic the planner recorded in it, and the work of its
    computes."""
    loaded = {i.tensor for i in program.instructions if isinstance(i, DmaLoad)} | {
        i.table for i in program.instructions if isinstance(i, DmaGather)}
    compulsory = program.compulsory_bytes or sum(  # a plan file without the bound: whole tensors, an upper estimate
        t.nbytes for t in program.tensors if (t.role in ("input", "constant") and t.name in loaded)
        or t.name in program.outputs)
    computes = [i for i in program.instructions if isinstance(i, Compute)]
    macs = sum(c.macs for c in computes if c.engine == "tensor")
    elem_ops = sum(c.elem_ops for c in computes if c.engine != "tensor")
    return _bounds(compulsory, macs, elem_ops, program.dtype, machine)


def _bounds(compulsory: int, macs: int, elem_ops: int, dtype: str, machine: MachineConfig) -> Bounds:
    compute = max(math.ceil(macs / machine.tensor_engine.macs_per_cycle[dtype]),
                  math.ceil(elem_ops / machine.vector_engine.elements_per_cycle))
    return Bounds(compulsory, compute, math.ceil(compulsory / machine.dram.bandwidth_bytes_per_cycle))
