"""Brute-force oracle for access relations: enumerate a block of a statement's loop nest point by point.

Each op's textbook loop nest is written here again, on purpose independently of `planner/ops`, as a function from
an iteration point (a dict of named dims) to the tensor elements it reads and writes, or None when the point is not
an iteration (a ConvTranspose point whose input coordinate is not an integer).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping

import islpy as isl

from planner import poly
from planner.stmt import Statement

Touched = tuple[list[tuple[str, tuple[int, ...]]], list[tuple[str, tuple[int, ...]]]]
LoopBody = Callable[[Mapping[str, int]], Touched | None]


def isl_points(elements: isl.Set) -> set[tuple[int, ...]]:
    found: set[tuple[int, ...]] = set()
    ndim = elements.dim(isl.dim_type.set)

    def collect(point: isl.Point) -> None:
        found.add(tuple(point.get_coordinate_val(isl.dim_type.set, axis).to_python() for axis in range(ndim)))

    elements.foreach_point(collect)
    return found


def extents(stmt: Statement) -> dict[str, tuple[int, int]]:
    """Half-open range of every dim, from the domain's bounding box."""
    hull = stmt.domain
    return {dim: (hull.dim_min_val(axis).to_python(), hull.dim_max_val(axis).to_python() + 1)
            for axis, dim in enumerate(stmt.dims)}


def brute_force(stmt: Statement, block: Mapping[str, tuple[int, int]], body: LoopBody,
                ) -> tuple[int, dict[str, set], dict[str, set]]:
    """Iterations, reads and writes of the block, by enumeration."""
    full = extents(stmt)
    ranges = [range(*block.get(dim, full[dim])) for dim in stmt.dims]
    reads: dict[str, set] = defaultdict(set)
    writes: dict[str, set] = defaultdict(set)
    iterations = 0
    for values in itertools.product(*ranges):
        touched = body(dict(zip(stmt.dims, values, strict=True)))
        if touched is None:
            continue
        iterations += 1
        for tensor, index in touched[0]:
            reads[tensor].add(index)
        for tensor, index in touched[1]:
            writes[tensor].add(index)
    return iterations, reads, writes


def assert_matches(stmt: Statement, block: Mapping[str, tuple[int, int]], body: LoopBody) -> None:
    """isl's footprints, write sets and counts equal the enumeration's, tensor by tensor."""
    iterations, reads, writes = brute_force(stmt, block, body)
    assert poly.count(poly.block_points(stmt, block)) == iterations
    for kind, expected, found in (("read", reads, poly.footprint(stmt, block)),
                                  ("write", writes, poly.write_footprint(stmt, block))):
        nonempty = {tensor: s for tensor, s in found.items() if not s.is_empty()}
        assert set(nonempty) == set(expected), f"{stmt.name}: {kind} tensors differ"
        for tensor, elements in nonempty.items():
            assert isl_points(elements) == expected[tensor], f"{stmt.name}: {kind} footprint of {tensor} in {block}"
            assert poly.count(elements) == len(expected[tensor])
