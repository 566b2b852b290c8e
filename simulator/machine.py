"""The machine description: what the planner targets and the simulator times.

`MachineConfig` is loaded from YAML (a preset shipped in `simulator/presets/`, or a user's file) and validated; every
size is in bytes, every rate per cycle of `clock_hz`, every time in cycles. The file format lives in
`simulator.machine_file`, which imports this module and never the reverse (`load_machine` and friends are there).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# The planning dtypes a tensor engine must give a MAC rate for.
DTYPES: tuple[str, ...] = ("fp32", "bf16", "fp16", "int8")
# Ops whose MACs are on 8-bit integers whatever the planning dtype: the opcode picks the int8 datapath.
INT8_MAC_OPS = frozenset({"QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"})


def mac_dtype(op_type: str, planning_dtype: str) -> str:
    """The dtype whose MACs-per-cycle rate a tensor-engine op runs at.

    >>> mac_dtype("QLinearConv", "fp32"), mac_dtype("Conv", "bf16")
    ('int8', 'bf16')
    """
    return "int8" if op_type in INT8_MAC_OPS else planning_dtype
# Tensor-engine dataflows: weight-stationary and output-stationary (simulator.systolic).
DATAFLOWS: tuple[str, ...] = ("ws", "os")


class MachineError(ValueError):
    """A bad machine description: an unknown or missing key, a wrong unit, a non-positive size."""


def require_positive(section: str, **values: float) -> None:
    for key, value in values.items():
        if not value > 0:
            raise MachineError(f"{section + '.' if section else ''}{key}: must be positive, got {value}")


def _not_negative(section: str, **values: float) -> None:
    for key, value in values.items():
        if not value >= 0:
            raise MachineError(f"{section}.{key}: must not be negative, got {value}")


# Invariants are checked where the values are built, so a machine made in code (a test, a sweep) is held to the same
# rules as one read from YAML; messages use the YAML keys.

@dataclass(frozen=True, slots=True)
class ScratchpadConfig:
    capacity_bytes: int
    partitions: int          # a buffer's leading (layout) axis maps onto partitions
    alignment_bytes: int     # every buffer offset is a multiple of this

    def __post_init__(self) -> None:
        require_positive("scratchpad", capacity=self.capacity_bytes, partitions=self.partitions,
                  alignment=self.alignment_bytes)
        if self.alignment_bytes & (self.alignment_bytes - 1):
            raise MachineError(f"scratchpad.alignment: {self.alignment_bytes} B is not a power of two")
        if self.capacity_bytes < self.partitions:
            raise MachineError(f"scratchpad.capacity: {self.capacity_bytes} B cannot give each of "
                               f"{self.partitions} partitions a byte")

    @property
    def partition_bytes(self) -> int:
        """Bytes per partition; capacity_bytes % partitions bytes at the end are never used."""
        return self.capacity_bytes // self.partitions


@dataclass(frozen=True, slots=True)
class DramConfig:
    bandwidth_bytes_per_cycle: float  # shared by every DMA engine
    latency_cycles: int               # paid once per transfer

    def __post_init__(self) -> None:
        require_positive("dram", bandwidth=self.bandwidth_bytes_per_cycle)
        _not_negative("dram", latency=self.latency_cycles)


@dataclass(frozen=True, slots=True)
class DmaConfig:
    engines: int                          # queues; each works its own, in program order
    outstanding: int                      # transfers in flight per queue
    burst_bytes: int                      # each contiguous DRAM run moves in whole bursts
    descriptor_cycles: int                # fixed queue cost per descriptor
    engine_bandwidth_bytes_per_cycle: float  # the most one queue can move per cycle
    descriptor_dims: int = 1              # one descriptor moves a strided box of this many dims (1: one run)

    def __post_init__(self) -> None:
        require_positive("dma", engines=self.engines, outstanding=self.outstanding, burst=self.burst_bytes,
                         engine_bandwidth=self.engine_bandwidth_bytes_per_cycle, descriptor_dims=self.descriptor_dims)
        _not_negative("dma", descriptor=self.descriptor_cycles)


@dataclass(frozen=True, slots=True)
class TensorEngineConfig:
    rows: int                          # systolic array: K (reduction) runs along rows
    cols: int                          # N (output channels) along columns
    macs_per_cycle: Mapping[str, int]  # by planning dtype: fp32, bf16, fp16, int8
    fill_cycles: int                   # per fold: the first wavefront's skew across the array
    drain_cycles: int                  # per fold: the last results' skew out of it
    load_cycles: int = 0               # per fold: the stationary operand in (WS weights) or out (OS outputs)
    dataflow: str = "ws"               # ws: K on rows, M streamed; os: M on rows, K streamed (simulator.systolic)
    stationary_buffers: int = 1        # 2: the next fold's stationary operand loads while the current one streams

    def __post_init__(self) -> None:
        require_positive("tensor_engine", rows=self.rows, cols=self.cols)
        if self.dataflow not in DATAFLOWS:
            raise MachineError(f"tensor_engine.dataflow: {self.dataflow!r} is not one of {', '.join(DATAFLOWS)}")
        if self.stationary_buffers not in (1, 2):
            raise MachineError(f"tensor_engine.stationary_buffers: must be 1 or 2, got {self.stationary_buffers}")
        if sorted(self.macs_per_cycle) != sorted(DTYPES):
            raise MachineError(f"tensor_engine.macs_per_cycle: needs exactly {', '.join(DTYPES)}, "
                               f"got {', '.join(map(str, self.macs_per_cycle)) or 'none'}")
        require_positive("tensor_engine.macs_per_cycle", **self.macs_per_cycle)
        _not_negative("tensor_engine", fill=self.fill_cycles, drain=self.drain_cycles, load=self.load_cycles)


@dataclass(frozen=True, slots=True)
class VectorEngineConfig:
    elements_per_cycle: int

    def __post_init__(self) -> None:
        require_positive("vector_engine", elements_per_cycle=self.elements_per_cycle)


def _horowitz_macs() -> dict[str, float]:
    # Horowitz, ISSCC 2014, 45 nm: multiply + add (see simulator.energy)
    return {"fp32": 4.6, "bf16": 1.5, "fp16": 1.5, "int8": 0.3}


@dataclass(frozen=True, slots=True)
class EnergyConfig:
    """Per-access energies in picojoules (simulator.energy); the defaults are Horowitz's 45 nm figures."""

    mac_pj: Mapping[str, float] = field(default_factory=_horowitz_macs)  # one MAC, by planning dtype
    vector_op_pj: float = 0.9                  # one vector-engine element operation
    scratchpad_read_pj_per_byte: float = 12.5
    scratchpad_write_pj_per_byte: float = 12.5
    dram_pj_per_byte: float = 162.5
    descriptor_pj: float = 80.0                # one DMA descriptor

    def __post_init__(self) -> None:
        if sorted(self.mac_pj) != sorted(DTYPES):
            raise MachineError(f"energy.mac: needs exactly {', '.join(DTYPES)}, "
                               f"got {', '.join(map(str, self.mac_pj)) or 'none'}")
        _not_negative("energy.mac", **self.mac_pj)
        _not_negative("energy", vector_op=self.vector_op_pj, scratchpad_read=self.scratchpad_read_pj_per_byte,
                      scratchpad_write=self.scratchpad_write_pj_per_byte, dram=self.dram_pj_per_byte,
                      descriptor=self.descriptor_pj)


@dataclass(frozen=True, slots=True)
class MachineConfig:
    name: str
    clock_hz: float
    scratchpad: ScratchpadConfig
    dram: DramConfig
    dma: DmaConfig
    tensor_engine: TensorEngineConfig
    vector_engine: VectorEngineConfig
    energy: EnergyConfig = field(default_factory=EnergyConfig)

    def __post_init__(self) -> None:
        require_positive("", clock=self.clock_hz)
