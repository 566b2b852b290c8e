"""Energy of a simulated program, from per-access energies in the machine description.

Counted off the program, as Accelergy and ZigZag count: every MAC at its dtype's energy, every vector-engine
element operation, every byte read from and written to the scratchpad (compute operands and outputs, and the
scratchpad side of each DMA), every byte DRAM moved (burst-rounded, what the bus carried), and every DMA descriptor.
Static (leakage) energy is not modelled.

Default energies (when a machine file has no `energy` section) are Horowitz's 45 nm figures ("Computing's energy
problem (and what we can do about it)", ISSCC 2014, the table of operation energies): an 8-bit multiply 0.2 pJ and a
32-bit add 0.1 pJ make an int8 MAC with a 32-bit accumulator 0.3 pJ; fp16 1.1 + 0.4 = 1.5 pJ; fp32 3.7 + 0.9 = 4.6
pJ; a 64-bit read of a 1 MB SRAM 100 pJ (12.5 pJ per byte, taken for reads and writes); DRAM 1.3 to 2.6 nJ per 64
bits (the low end, 162.5 pJ per byte). bf16 is taken as fp16; a vector element operation as a 32-bit float add
(0.9 pJ); a descriptor as eight 64-bit SRAM reads of a small (8 KB, 10 pJ) buffer, 80 pJ.

>>> from simulator.machine_file import load_machine
>>> load_machine("edge-npu").energy.mac_pj["int8"]
0.3
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.costs import Costs
from simulator.machine import EnergyConfig


@dataclass(frozen=True, slots=True)
class Energy:
    """Energy of one run in picojoules, by component; `total_pj` their sum."""

    mac_pj: float
    vector_pj: float
    scratchpad_read_pj: float
    scratchpad_write_pj: float
    dram_pj: float
    descriptor_pj: float

    @property
    def total_pj(self) -> float:
        return (self.mac_pj + self.vector_pj + self.scratchpad_read_pj + self.scratchpad_write_pj + self.dram_pj
                + self.descriptor_pj)

    def to_dict(self) -> dict[str, float]:
        """`{"total": ..., "mac": ..., ...}` in pJ."""
        return {"total": self.total_pj, "mac": self.mac_pj, "vector": self.vector_pj,
                "scratchpad_read": self.scratchpad_read_pj, "scratchpad_write": self.scratchpad_write_pj,
                "dram": self.dram_pj, "descriptors": self.descriptor_pj}


def program_energy(costs: Costs, energy: EnergyConfig, dtype: str) -> Energy:
    """The energy of a program from its instructions' costs (`simulator.costs`); `dtype` its planning dtype."""
    return Energy(mac_pj=costs.macs * energy.mac_pj[dtype], vector_pj=costs.elem_ops * energy.vector_op_pj,
                  scratchpad_read_pj=costs.scratchpad_read_bytes * energy.scratchpad_read_pj_per_byte,
                  scratchpad_write_pj=costs.scratchpad_write_bytes * energy.scratchpad_write_pj_per_byte,
                  dram_pj=int(costs.burst_bytes.sum()) * energy.dram_pj_per_byte,
                  descriptor_pj=int(costs.descriptors.sum()) * energy.descriptor_pj)
