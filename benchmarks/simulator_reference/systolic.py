"""The tensor engine as a systolic array: folds, and what each fold pays.

A tensor-engine tile is a matrix product of shape `mnk = (M, N, K)`: M rows streamed, N output columns, K the
reduction. An array of R rows and C columns maps two of the three dimensions onto space and streams the third
through time (Samajdar et al., "SCALE-Sim: Systolic CNN Accelerator Simulator", arXiv:1811.02883, section III; and
Chen et al., "Eyeriss", ISCA 2016, for the dataflow names):

- `ws`, weight-stationary (TPU v1, NeuronCore's TensorE): K on rows, N on columns, M streamed;
- `os`, output-stationary (ShiDianNao): M on rows, N on columns, K streamed.

The spatial dimensions fold: `ceil(rows-dim / R) * ceil(cols-dim / C)` folds, each a full pass of the array (a
partial fold costs as much as a full one: the wavefront crosses every PE). One fold costs

    load + fill + T + drain

- `load` (`tensor_engine.load`): put the stationary operand in place (WS: shift R rows of weights in; OS: shift the
  finished outputs out), R cycles on a one-row-per-cycle array;
- `fill`: the skew of the first streamed wavefront across the array (about R - 1 cycles);
- `T`: the streamed extent at the array's rate for the dtype, `ceil(T * R * C / macs_per_cycle)` (a slower dtype
  streams a row every few cycles);
- `drain`: the skew of the last results out of the array (about C - 1 cycles).

That is SCALE-Sim's per-fold `2R + C + T - 2` when load = R, fill = R - 1 and drain = C - 1.

With `stationary_buffers: 2` the array holds a second stationary tile (TPU v1 double-buffers its weight tile "to hide
the 256 cycles it takes to shift a tile in", Jouppi et al., ISCA 2017): the next fold loads while the current one
streams, and its wavefront follows directly behind, so the load, fill and drain are paid once per tile and every fold
costs `max(T, load)`. A tile that starts right as the previous one ends, with its operands ready `load` cycles
before, is *warm*: its first load and fill hid under the previous tile too (`warm_tensor_cycles`).

>>> from simulator.machine import TensorEngineConfig
>>> ws = TensorEngineConfig(32, 32, {"fp32": 256, "bf16": 512, "fp16": 512, "int8": 1024}, 31, 31, load_cycles=32)
>>> tensor_cycles((3136, 64, 576), ws, "int8")  # 3x3 64->64 conv at 56x56: 36 folds of 32 + 31 + 3136 + 31
116280
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.machine import TensorEngineConfig


@dataclass(frozen=True, slots=True)
class Folds:
    """How a tile maps onto the array: `count` folds, each streaming `stream_cycles`."""

    count: int
    stream_cycles: int


def folds(mnk: tuple[int, ...], engine: TensorEngineConfig, macs_per_cycle: int) -> Folds:
    """The folds of tile `mnk` under the engine's dataflow.

    >>> from simulator.machine import TensorEngineConfig
    >>> e = TensorEngineConfig(4, 4, {"fp32": 8, "bf16": 16, "fp16": 16, "int8": 32}, 0, 0)
    >>> folds((5, 9, 4), e, 16)  # WS: K = 4 on one row fold, N = 9 on 3 column folds, 5 rows streamed
    Folds(count=3, stream_cycles=5)
    """
    m, n, k = mnk
    spatial_rows, streamed = (k, m) if engine.dataflow == "ws" else (m, k)
    count = -(-spatial_rows // engine.rows) * -(-n // engine.cols)
    return Folds(count, -(-streamed * engine.rows * engine.cols // macs_per_cycle))


def tensor_cycles(mnk: tuple[int, ...], engine: TensorEngineConfig, dtype: str) -> int:
    """Cycles of one tensor-engine tile started cold (see the module docstring); `dtype` must have a MAC rate."""
    f = folds(mnk, engine, engine.macs_per_cycle[dtype])
    overhead = engine.load_cycles + engine.fill_cycles + engine.drain_cycles
    if engine.stationary_buffers == 1:
        return f.count * (overhead + f.stream_cycles)
    return overhead + f.count * max(f.stream_cycles, engine.load_cycles)


def warm_tensor_cycles(mnk: tuple[int, ...], engine: TensorEngineConfig, dtype: str) -> int:
    """Cycles of a tile whose first load and fill hid under the previous tile (only with two stationary buffers;
    with one it is `tensor_cycles`)."""
    if engine.stationary_buffers == 1:
        return tensor_cycles(mnk, engine, dtype)
    f = folds(mnk, engine, engine.macs_per_cycle[dtype])
    return engine.drain_cycles + f.count * max(f.stream_cycles, engine.load_cycles)


def macs_cycles(macs: int, engine: TensorEngineConfig, dtype: str) -> int:
    """A tile with no systolic shape: its MACs at the full rate, with one fill and drain."""
    return engine.fill_cycles + engine.drain_cycles + -(-macs // engine.macs_per_cycle[dtype])
