"""The closed-form counts per-op staging chooses by (planner.staging.counting) are what walking the tiles gives, and
planning with them emits the very program that listing every tile did."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import models
from planner import api
from planner.graph import load_graph
from planner.ops import lower
from planner.staging import counting
from planner.staging.counting import OrderedTiles, counts, largest_shapes, loaded_enumerated, shapes_enumerated
from planner.stmt import Statement
from planner.tiling import blocks, extents, loop_orders, output_dims, tile_boxes
from planner.tiling_prices import candidate_sizes
from simulator.isa import Box

ZOO = ("cnn", "resnet18", "mobilenet_v2", "vgg16", "mlp", "bert_base", "vit")


@functools.cache
def _statements() -> tuple[Statement, ...]:
    found = []
    for name in ZOO:
        lowered = lower(load_graph(models.build(name, small=True), dtype="bf16"))
        seen = set()
        for stmt in lowered.statements:
            kind = (stmt.op_type, tuple(extents(stmt).values()))
            if kind not in seen:  # one of each kind and shape per model keeps the draw broad and fast
                seen.add(kind)
                found.append(stmt)
    return tuple(found)


def _elem_bytes(tensor: str) -> int:
    return 1 + len(tensor) % 3  # unequal sizes per tensor, so a wrong tensor's count shows


def _check(stmt: Statement, tile: dict[str, int]) -> bool:
    """Whether counts and the walk agree for every loop order of `tile`; True when the counts apply at all."""
    counted = counts(stmt, tuple(sorted(tile.items())))
    for order in loop_orders(stmt, tile):
        listed = [(block, *tile_boxes(stmt, block)) for block in blocks(stmt, tile, order)]
        fast = OrderedTiles(stmt, tile, order)
        for in_place in (frozenset(), frozenset(stmt.tensors_read[:1])):
            assert fast.loaded(_elem_bytes, in_place) == loaded_enumerated(listed, _elem_bytes, in_place), \
                (stmt.name, tile, order, in_place)
            assert fast.shapes(in_place) == shapes_enumerated(stmt, listed, in_place), (stmt.name, tile, order)
        assert fast.written(_elem_bytes) == sum(box.numel * _elem_bytes(t) for _, _, writes in listed
                                                for t, box in writes.items()), (stmt.name, tile, order)
    return counted is not None


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_counts_equal_the_walk_over_the_tiles(data: st.DataObject) -> None:
    stmt = data.draw(st.sampled_from(_statements()), label="statement")
    spans = extents(stmt)
    tile = {d: data.draw(st.sampled_from(candidate_sizes(spans[d][1] - spans[d][0])), label=d)
            for d in output_dims(stmt)}
    _check(stmt, tile)


def test_counts_apply_to_most_zoo_statements() -> None:
    """The closed forms are used, not only the fallback: a tile of a quarter of each dim counts for most kinds."""
    applied = sum(_check(stmt, {d: max(1, (hi - lo) // 4) for d, (lo, hi) in extents(stmt).items()
                                if d in output_dims(stmt)}) for stmt in _statements())
    assert applied >= len(_statements()) // 2


def test_a_clamped_border_that_repeats_a_box_is_walked() -> None:
    """Rows of one point of a 3x3 conv with pads 1 on two rows read the same two rows: the box does not change from
    one tile to the next, so no closed form is taken, and the walk counts one load."""
    stmt = next(s for s in _statements() if s.op_type == "Conv" and _spatial(s) == 2)
    tile = {d: 1 if d in ("y", "x") else hi - lo for d, (lo, hi) in extents(stmt).items() if d in output_dims(stmt)}
    assert counts(stmt, tuple(sorted(tile.items()))) is None
    _check(stmt, tile)


def _spatial(stmt: Statement) -> int:
    spans = extents(stmt)
    return min((spans[d][1] - spans[d][0] for d in ("y", "x") if d in spans), default=0)


@pytest.mark.parametrize(("name", "scratchpad"), [("resnet18", "16KiB"), ("vgg16", "64KiB"), ("mobilenet_v2", "32KiB")])
def test_counted_plans_are_the_walked_plans(name: str, scratchpad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    machine = api.machine("edge-npu", scratchpad=scratchpad)
    for strategy in ("baseline", "fused"):
        counted = api.plan(f"{name}-small", machine, strategy=strategy)
        with monkeypatch.context() as patch:
            patch.setattr(counting, "ENUMERATE", True)
            walked = api.plan(f"{name}-small", machine, strategy=strategy)
        assert counted == walked, (name, strategy)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.lists(st.tuples(st.integers(0, 9), st.integers(1, 5)),
                                                            min_size=2, max_size=2)), max_size=30))
def test_largest_shapes_is_the_elementwise_max(drawn: list[tuple[str, list[tuple[int, int]]]]) -> None:
    boxes = [({tensor: Box(tuple(s for s, _ in axes), tuple(s + n for s, n in axes))}, {}) for tensor, axes in drawn]
    expected: dict[str, tuple[int, ...]] = {}
    for reads, _ in boxes:
        for tensor, box in reads.items():
            if tensor != "c":
                old = expected.get(tensor, box.shape)
                expected[tensor] = tuple(max(a, b) for a, b in zip(old, box.shape, strict=True))
    found = largest_shapes(boxes, frozenset("c"))
    assert found == expected and list(found) == list(expected)
