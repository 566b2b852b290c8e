"""`poly.writer_blocks.translated_writers`, the arithmetic path of `planner.tiling.block_writing`, gives isl's block.

Every statement of the small zoo, at random boxes of each tensor it writes (inside, straddling and outside the
tensor): where the write is a translation, the ranges are the bounds of isl's writers, or None where isl's set is
empty.
"""

from __future__ import annotations

import numpy as np
import pytest

from models import ZOO, build
from planner import poly
from planner.graph import load_graph
from planner.ops import lower
from planner.poly.writer_blocks import translated_writers
from planner.tiling import output_dims


def isl_block(stmt, tensor, start, stop):  # type: ignore[no-untyped-def]
    points = poly.writers(stmt, tensor, start, stop)
    if points.is_empty():
        return None
    return {dim: (points.dim_min_val(axis).to_python(), points.dim_max_val(axis).to_python() + 1)
            for axis, dim in enumerate(stmt.dims) if dim in output_dims(stmt)}


@pytest.mark.parametrize("source", sorted(ZOO))
def test_translated_writers_are_isl_writers(source: str) -> None:
    lowered = lower(load_graph(build(source, small=True)))
    rng = np.random.default_rng(0)
    fast = 0
    for stmt in lowered.statements:
        for tensor in dict.fromkeys(access.tensor for access in stmt.writes):
            shape = lowered.graph.tensors[tensor].shape
            for _ in range(6):
                start = tuple(int(rng.integers(-1, extent + 1)) for extent in shape)
                stop = tuple(int(min(extent + 1, lo + rng.integers(1, extent + 2)))
                             for lo, extent in zip(start, shape, strict=True))
                translated, ranges = translated_writers(stmt, tensor, start, stop)
                if not translated:
                    continue
                fast += 1
                found = None if ranges is None else {d: r for d, r in ranges.items() if d in output_dims(stmt)}
                assert found == isl_block(stmt, tensor, start, stop), (stmt.name, tensor, start, stop)
    assert fast > 0
