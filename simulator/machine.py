"""The machine description: what the planner targets and the simulator times.

`MachineConfig` is loaded from YAML (a preset shipped in `simulator/presets/`, or a user's file) and validated; every
size is in bytes, every rate per cycle of `clock_hz`, every time in cycles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class MachineError(ValueError):
    """A bad machine description: an unknown or missing key, a wrong unit, a non-positive size."""


@dataclass(frozen=True, slots=True)
class ScratchpadConfig:
    capacity_bytes: int
    partitions: int          # a buffer's leading (layout) axis maps onto partitions
    alignment_bytes: int     # every buffer offset is a multiple of this

    @property
    def partition_bytes(self) -> int:
        return self.capacity_bytes // self.partitions


@dataclass(frozen=True, slots=True)
class DramConfig:
    bandwidth_bytes_per_cycle: float  # shared by every DMA engine
    latency_cycles: int               # paid once per transfer


@dataclass(frozen=True, slots=True)
class DmaConfig:
    engines: int                          # queues; each works its own, in program order
    outstanding: int                      # transfers in flight per queue
    burst_bytes: int                      # each contiguous DRAM run moves in whole bursts
    descriptor_cycles: int                # fixed queue cost per contiguous run (descriptor)
    engine_bandwidth_bytes_per_cycle: float  # the most one queue can move per cycle


@dataclass(frozen=True, slots=True)
class TensorEngineConfig:
    rows: int                          # systolic array: K (reduction) runs along rows
    cols: int                          # N (output channels) along columns
    macs_per_cycle: Mapping[str, int]  # by planning dtype: fp32, bf16, fp16, int8
    fill_cycles: int
    drain_cycles: int


@dataclass(frozen=True, slots=True)
class VectorEngineConfig:
    elements_per_cycle: int


@dataclass(frozen=True, slots=True)
class MachineConfig:
    name: str
    clock_hz: float
    scratchpad: ScratchpadConfig
    dram: DramConfig
    dma: DmaConfig
    tensor_engine: TensorEngineConfig
    vector_engine: VectorEngineConfig
