"""The figures of one simulated plan beside its bounds: what `planner.api.evaluate` returns and `simulate --json`
prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from planner.bounds import Bounds
from simulator.isa import Program
from simulator.machine import MachineConfig
from simulator.timing import SimResult


@dataclass(frozen=True, slots=True)
class OpReport:
    """One op's share of a simulated program (`cycles` is its span, first start to last end; spans may overlap)."""

    name: str
    cycles: int
    compute_cycles: int  # engine-busy cycles of its computes
    dram_bytes_read: int
    dram_bytes_written: int
    dram_burst_bytes_read: int  # the same rounded up to whole bursts, run by run
    dram_burst_bytes_written: int


@dataclass(frozen=True, slots=True)
class Report:
    """The simulated figures of one plan beside its bounds; `best_unfused_bytes` is None for a plan file alone."""

    model: str
    machine: str
    strategy: str
    cycles: int
    dram_bytes_read: int
    dram_bytes_written: int
    dram_burst_bytes: int
    dram_burst_bytes_read: int
    dram_burst_bytes_written: int
    dma_transfers: int
    peak_scratchpad_bytes: int
    stall_cycles: int
    busy_cycles: Mapping[str, int]
    instructions: int
    compulsory_bytes: int
    roofline_cycles: int
    ops: tuple[OpReport, ...]
    energy_pj: Mapping[str, float]
    best_unfused_bytes: int | None = None

    @property
    def dram_bytes(self) -> int:
        """Payload bytes moved both ways."""
        return self.dram_bytes_read + self.dram_bytes_written

    def to_dict(self) -> dict[str, Any]:
        """The `simulate --json` document."""
        document: dict[str, Any] = {
            "strategy": self.strategy, "machine": self.machine, "model": self.model, "total_cycles": self.cycles,
            "dram_bytes_read": self.dram_bytes_read, "dram_bytes_written": self.dram_bytes_written,
            "dram_burst_bytes": self.dram_burst_bytes, "dram_burst_bytes_read": self.dram_burst_bytes_read,
            "dram_burst_bytes_written": self.dram_burst_bytes_written, "dma_transfers": self.dma_transfers,
            "peak_scratchpad_bytes": self.peak_scratchpad_bytes, "compulsory_bytes": self.compulsory_bytes,
            "roofline_cycles": self.roofline_cycles, "stall_cycles": self.stall_cycles,
            "busy_cycles": dict(self.busy_cycles), "instructions": self.instructions,
            "best_unfused_bytes": self.best_unfused_bytes, "energy_pj": dict(self.energy_pj),
            "ops": [{"name": op.name, "cycles": op.cycles, "compute_cycles": op.compute_cycles,
                     "dram_bytes_read": op.dram_bytes_read, "dram_bytes_written": op.dram_bytes_written,
                     "dram_burst_bytes_read": op.dram_burst_bytes_read,
                     "dram_burst_bytes_written": op.dram_burst_bytes_written} for op in self.ops]}
        return document


def report_of(program: Program, config: MachineConfig, result: SimResult, limits: Bounds) -> Report:
    """A Report of an already simulated program."""
    stats = result.stats
    return Report(
        model=program.model, machine=config.name, strategy=program.strategy, cycles=stats.total_cycles,
        dram_bytes_read=stats.dram_bytes_read, dram_bytes_written=stats.dram_bytes_written,
        dram_burst_bytes=stats.dram_burst_bytes, dram_burst_bytes_read=stats.dram_burst_bytes_read,
        dram_burst_bytes_written=stats.dram_burst_bytes_written, dma_transfers=stats.dma_transfers,
        peak_scratchpad_bytes=stats.peak_scratchpad_bytes, stall_cycles=stats.stall_cycles,
        busy_cycles=dict(stats.busy_cycles), instructions=len(program.instructions),
        compulsory_bytes=limits.compulsory_bytes, roofline_cycles=limits.roofline_cycles,
        best_unfused_bytes=limits.best_unfused_bytes, energy_pj=result.energy.to_dict(),
        ops=tuple(OpReport(name, op.cycles, op.compute_cycles, op.dram_bytes_read, op.dram_bytes_written,
                           op.dram_burst_bytes_read, op.dram_burst_bytes_written) for name, op in stats.ops.items()))
