"""How many cycles one Compute holds its engine, and the error of a program the timing model cannot run.

The formulas are in `simulator.timing`'s docstring; the tensor engine's are `simulator.systolic`'s.
"""

from __future__ import annotations

from simulator import systolic
from simulator.isa import Compute
from simulator.machine import MachineConfig, mac_dtype


class TimingError(ValueError):
    """A program the timing model cannot run (a DMA queue the machine lacks, an unknown tensor or buffer, a dtype
    the tensor engine has no rate for); the message names the instruction."""


def compute_cycles(compute: Compute, machine: MachineConfig, dtype: str, *, warm: bool = False) -> int:
    """Cycles one Compute occupies its engine (formulas in `simulator.timing`); `warm`: it follows another tensor
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
