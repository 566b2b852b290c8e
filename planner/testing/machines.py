"""Hypothesis strategies for machine descriptions."""

from __future__ import annotations

from hypothesis import strategies as st

from simulator.machine import (
    DmaConfig,
    DramConfig,
    MachineConfig,
    ScratchpadConfig,
    TensorEngineConfig,
    VectorEngineConfig,
)

Draw = st.DrawFn

# -- machines -------------------------------------------------------------------------------------------------------

def _log_uniform(low_exponent: int, high_exponent: int) -> st.SearchStrategy[int]:
    """An integer spread evenly over orders of magnitude, 2**low .. 2**high; it shrinks towards 2**high, the roomy
    end, so a shrunk example keeps a small scratchpad only when the failure needs it."""
    return st.integers(0, high_exponent - low_exponent).flatmap(
        lambda drop: st.integers(0, 2 ** (high_exponent - drop - 1) - 1).map(lambda d: 2 ** (high_exponent - drop) - d))


_RATES = st.one_of(st.sampled_from([1.0, 4.0, 16.0, 64.0]), st.floats(0.25, 512.0, allow_nan=False))


@st.composite
def machines(draw: Draw, partition_bytes: st.SearchStrategy[int] | None = None,
             partitions: st.SearchStrategy[int] | None = None,
             alignments: st.SearchStrategy[int] | None = None) -> MachineConfig:
    """A machine: the scratchpad from 5 bytes per partition (no tile fits) to 64 KiB per partition (every model
    here fits whole), in 1 to 32 partitions with 1 to 64 B
    alignment; DRAM, DMA and engines of any plausible size. `partition_bytes`, `partitions` and `alignments` replace
    those draws."""
    partition_count = draw(partitions if partitions is not None else st.sampled_from([1, 2, 4, 8, 16, 32]))
    per_partition = draw(partition_bytes if partition_bytes is not None else _log_uniform(3, 16))
    capacity = per_partition * partition_count + draw(st.integers(0, partition_count - 1))  # the rest goes unused
    alignment = draw(alignments if alignments is not None else st.sampled_from([1, 2, 4, 8, 16, 32, 64]))
    rows, cols = draw(st.integers(4, 64)), draw(st.integers(4, 64))
    fp32 = draw(st.integers(1, rows * cols))
    return MachineConfig(
        name="hypothesis", clock_hz=1e9,
        scratchpad=ScratchpadConfig(capacity, partition_count, alignment),
        dram=DramConfig(bandwidth_bytes_per_cycle=draw(_RATES), latency_cycles=draw(st.integers(0, 1000))),
        dma=DmaConfig(engines=draw(st.integers(1, 4)), outstanding=draw(st.integers(1, 4)),
                      burst_bytes=draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128, 256, 512])),
                      descriptor_cycles=draw(st.integers(0, 32)),
                      engine_bandwidth_bytes_per_cycle=draw(_RATES)),
        tensor_engine=TensorEngineConfig(rows=rows, cols=cols,
                                         macs_per_cycle={"fp32": fp32, "bf16": 2 * fp32, "fp16": 2 * fp32,
                                                         "int8": 4 * fp32},
                                         fill_cycles=draw(st.integers(0, 64)), drain_cycles=draw(st.integers(0, 64))),
        vector_engine=VectorEngineConfig(elements_per_cycle=draw(st.integers(1, 128))),
    )

