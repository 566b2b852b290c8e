"""`poly.affine_tile_boxes`, the arithmetic path of `planner.tiling.tile_boxes`, gives the boxes isl gives.

Every statement of the small zoo and of the checked-in exports, at random blocks of its output dims (and of all its
dims, as a split reduction asks): where the arithmetic applies, its boxes equal the bounding boxes of isl's footprints,
tensor for tensor, the untouched tensors left out alike.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from models import ZOO, build
from planner import poly
from planner.graph import load_graph
from planner.ops import lower
from planner.stmt import Statement
from planner.tiling import bounding_box, extents, output_dims

EXPORTS = sorted((Path(__file__).resolve().parent.parent / "data" / "exports").glob("*.onnx"))


def isl_boxes(stmt: Statement, block: dict[str, tuple[int, int]]):  # type: ignore[no-untyped-def]
    def of(sets):  # type: ignore[no-untyped-def]
        return {t: (box.start, box.stop) for t, s in sets.items() if not s.is_empty() for box in [bounding_box(s)]}
    return of(poly.footprint(stmt, block)), of(poly.write_footprint(stmt, block))


def random_block(stmt: Statement, dims: tuple[str, ...], rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    spans = extents(stmt)
    block = {}
    for dim in dims:
        lo, hi = spans[dim]
        a, b = sorted(rng.integers(lo, hi + 1, size=2))
        block[dim] = (int(a), int(b) + 1) if a == b and b < hi else (int(a), int(max(b, a + 1)))
        if block[dim][1] > hi:
            block[dim] = (hi - 1, hi)
    return block


@pytest.mark.parametrize("source", [*sorted(ZOO), *(path.name for path in EXPORTS)])
def test_arithmetic_boxes_are_isl_boxes(source: str) -> None:
    path = next((p for p in EXPORTS if p.name == source), None)
    shapes = {name: tuple(dims) for name, dims in json.loads(path.with_suffix(".json").read_text())["inputs"].items()
              } if path else None
    lowered = lower(load_graph(onnx.load(path) if path else build(source, small=True), input_shapes=shapes))
    rng = np.random.default_rng(0)
    fast = 0
    for stmt in lowered.statements:
        for dims in (output_dims(stmt), stmt.dims):
            for _ in range(4):
                block = random_block(stmt, dims, rng)
                found = poly.affine_tile_boxes(stmt, block)
                if found is None:
                    continue
                fast += 1
                assert found == isl_boxes(stmt, block), (stmt.node, stmt.op_type, block)
    assert fast > 0 or not lowered.statements
