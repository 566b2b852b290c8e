"""Proven refusals: when a plan is refused for a scratchpad too small, the smallest tile really does not fit.

The refusal (`TileTooLarge`) carries the 1-element block it tried and the bytes per partition its buffers need. Here
that figure is recomputed apart from the tiler: from the op's isl footprints (`planner.poly`) at that block (or at
every 1-element block, when the refusal is about all of them), each tensor's bounding box worked out here, double
buffered like the planner (one slot for an input every tile reads whole), and it must exceed the capacity.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import replace

import islpy as isl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import poly
from planner.errors import PlanError, SplitTooLarge, TileTooLarge
from planner.graph import load_graph
from planner.ops import lower
from planner.staging.alloc import buffer_bytes
from planner.stmt import LoweredGraph, Statement
from planner.testing import STRATEGIES, machines, onnx_models
from planner.tiling import extents, output_dims  # which dims a tile splits: the planner's notion, not a footprint
from planner.tiling_prices import ACCUMULATOR_BYTES
from simulator.machine import MachineConfig

Block = dict[str, tuple[int, int]]


def box_shape(elements: isl.Set) -> tuple[int, ...]:
    ndim = elements.dim(isl.dim_type.set)
    return tuple(elements.dim_max_val(axis).to_python() - elements.dim_min_val(axis).to_python() + 1
                 for axis in range(ndim))


def one_element_blocks(stmt: Statement) -> list[Block]:
    """Every block of one output element: each output dim (the dims a tile splits) at each of its points."""
    dims = output_dims(stmt)
    spans = extents(stmt)
    return [{dim: (p, p + 1) for dim, p in zip(dims, point, strict=True)}
            for point in itertools.product(*(range(*spans[dim]) for dim in dims))]


def minimal_bytes(stmt: Statement, error: TileTooLarge, machine: MachineConfig, elem_bytes: dict[str, int]) -> int:
    """Bytes per partition of the buffers of the refusal's 1-element block(s), recomputed from isl footprints."""
    blocks = [error.block] if error.block is not None else one_element_blocks(stmt)
    return blocks_bytes(stmt, blocks, frozenset(error.in_place), machine, elem_bytes)


def blocks_bytes(stmt: Statement, blocks: list[Block], in_place: frozenset[str], machine: MachineConfig,
                 elem_bytes: dict[str, int]) -> int:
    """Bytes per partition of double-buffered buffers that hold what any of `blocks` reads and writes."""
    whole = {t: box_shape(s) for t, s in poly.footprint(stmt).items() if not s.is_empty()}
    shapes: dict[str, tuple[int, ...]] = {}
    partial: set[str] = set()
    for block in blocks:
        read = {t: s for t, s in poly.footprint(stmt, block).items() if not s.is_empty()}
        written = {t: s for t, s in poly.write_footprint(stmt, block).items() if not s.is_empty()}
        for tensor, elements in [*read.items(), *written.items()]:
            shape = box_shape(elements)
            shapes[tensor] = tuple(max(a, b) for a, b in zip(shapes.get(tensor, shape), shape, strict=True))
        partial |= {t for t, s in read.items() if box_shape(s) != whole[t] or not s.is_equal(poly.footprint(stmt)[t])}
        partial |= set(written)
    return sum((2 if tensor in partial else 1) * buffer_bytes(shape, elem_bytes[tensor], machine.scratchpad)
               for tensor, shape in shapes.items() if tensor not in in_place)


def check_proven(error: PlanError, lowered: LoweredGraph, machine: MachineConfig) -> None:
    if not isinstance(error, TileTooLarge):
        return
    assert error.bytes_per_partition > error.capacity_bytes <= machine.scratchpad.partition_bytes
    assert f"{error.bytes_per_partition:,} bytes per partition" in str(error) and \
        f"the {error.capacity_bytes:,} the scratchpad has" in str(error), str(error)
    stmt = next(s for s in lowered.statements if s.node == error.node)
    elem_bytes = {name: lowered.graph.elem_bytes(name) for name in lowered.graph.tensors}
    recomputed = minimal_bytes(stmt, error, machine, elem_bytes)
    assert recomputed == error.bytes_per_partition, (recomputed, str(error))
    assert recomputed > error.capacity_bytes


def split_step_bytes(stmt: Statement, error: SplitTooLarge, machine: MachineConfig,
                     elem_bytes: dict[str, int]) -> int:
    """Bytes per partition of a split reduction's smallest step, recomputed from isl footprints: each input's box of
    one output element over one reduction step, double buffered (the next step loads while this one computes), beside
    the output element twice, once as the running partial sum at accumulator precision and once in its own type."""
    read = {t: box_shape(s) for t, s in poly.footprint(stmt, error.block).items() if not s.is_empty()}
    (written,) = (box_shape(s) for s in poly.write_footprint(stmt, error.block).values() if not s.is_empty())
    out = stmt.writes[0].tensor
    sp = machine.scratchpad
    return sum(2 * buffer_bytes(shape, elem_bytes[t], sp) for t, shape in read.items()) + \
        buffer_bytes(written, ACCUMULATOR_BYTES, sp) + buffer_bytes(written, elem_bytes[out], sp)


def check_split_proven(error: SplitTooLarge, lowered: LoweredGraph, machine: MachineConfig) -> None:
    assert error.bytes_per_partition > error.capacity_bytes <= machine.scratchpad.partition_bytes
    assert f"needs {error.bytes_per_partition:,} bytes per partition" in str(error), str(error)
    stmt = next(s for s in lowered.statements if s.node == error.node)
    block_extent = {dim: stop - start for dim, (start, stop) in error.block.items()}
    assert set(block_extent.values()) == {1}, f"the refused step is not the smallest: {error.block}"
    elem_bytes = {name: lowered.graph.elem_bytes(name) for name in lowered.graph.tensors}
    recomputed = split_step_bytes(stmt, error, machine, elem_bytes)
    assert recomputed == error.bytes_per_partition, (recomputed, str(error))
    assert recomputed > error.capacity_bytes


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_refusal_is_proven(strategy: str, capsys: pytest.CaptureFixture[str]) -> None:
    seen: Counter[str] = Counter()

    @settings(max_examples=30)
    @given(model=onnx_models(), machine=machines(partition_bytes=st.integers(4, 256)))
    def plan(model, machine: MachineConfig) -> None:
        lowered = lower(load_graph(model))
        try:
            STRATEGIES[strategy](lowered, machine)
        except TileTooLarge as error:
            seen["refused, smallest block" if error.block is not None else "refused, all 1-element tiles"] += 1
            check_proven(error, lowered, machine)
        except SplitTooLarge as error:
            seen["refused, one reduction step"] += 1
            check_split_proven(error, lowered, machine)
        except PlanError as error:
            raise AssertionError(f"a refusal that carries no minimal tile: {error}") from None
        else:
            seen["planned"] += 1

    plan()
    with capsys.disabled():
        print(f"\nrefusals, {strategy}: " + ", ".join(f"{what} {count}" for what, count in sorted(seen.items())))
    assert sum(count for what, count in seen.items() if what.startswith("refused")) > 0


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_machine_that_holds_every_minimal_tile_is_never_refused(strategy: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The converse: a scratchpad of exactly the bytes per partition the largest op's tiles of one output element need
    (recomputed here, every 1-element block of every op, double buffered) always plans."""
    seen: Counter[str] = Counter()

    @settings(max_examples=15)
    @given(model=onnx_models(max_layers=4), drawn=machines())
    def plan(model, drawn: MachineConfig) -> None:
        lowered = lower(load_graph(model))
        elem_bytes = {name: lowered.graph.elem_bytes(name) for name in lowered.graph.tensors}
        need = max(blocks_bytes(stmt, one_element_blocks(stmt), frozenset(), drawn, elem_bytes)
                   for stmt in lowered.statements)
        sp = drawn.scratchpad
        machine = replace(drawn, scratchpad=replace(sp, capacity_bytes=need * sp.partitions))
        try:
            STRATEGIES[strategy](lowered, machine)
        except PlanError as error:
            raise AssertionError(f"refused on {need:,} bytes per partition, which holds every op's tiles of one "
                                 f"output element: {error}") from None
        seen["planned at the minimum"] += 1

    plan()
    with capsys.disabled():
        print(f"\nminimal machines, {strategy}: " + ", ".join(f"{w} {c}" for w, c in sorted(seen.items())))
    assert seen["planned at the minimum"] > 0
