"""The isl queries about one statement's blocks: the elements a block reads and writes (halos included), the points
that write a box, what outputs depend on, element counts and flow dependences.

Tiles are blocks of a statement's iteration space, given as `{dim: (start, stop)}` half-open ranges on named dims;
dims left out span their whole extent. Results repeat a lot during a schedule search, so they are cached per
statement (statements hash by identity) and block.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import islpy as isl

from planner.stmt import Access, Statement

Block = Mapping[str, tuple[int, int]]


@dataclass(frozen=True, slots=True, eq=False)
class Dependence:
    """Flow dependence: points of `source` write elements of `tensor` that points of `sink` read."""

    source: Statement
    sink: Statement
    tensor: str
    relation: isl.Map  # { Source[...] -> Sink[...] }


def tensor_set(space_name: str, shape: tuple[int, ...]) -> isl.Set:
    """All elements of a tensor of the given shape.

    >>> tensor_set("X", (2, 3))
    Set("{ X[i0, i1] : 0 <= i0 <= 1 and 0 <= i1 <= 2 }")
    """
    return box_set(space_name, (0,) * len(shape), shape)


@functools.lru_cache(maxsize=1 << 16)
def spans(stmt: Statement) -> dict[str, tuple[int, int]]:
    """Half-open range of every dim over the statement's domain (asked of isl once per statement: tiling, the
    closed-form boxes and the writers of a box all need it)."""
    return {dim: (stmt.domain.dim_min_val(axis).to_python(), stmt.domain.dim_max_val(axis).to_python() + 1)
            for axis, dim in enumerate(stmt.dims)}


def block_points(stmt: Statement, block: Block | None = None) -> isl.Set:
    """The statement's domain points inside a block."""
    return _block_points(stmt, _key(block))


@functools.lru_cache(maxsize=1 << 16)
def _block_points(stmt: Statement, key: tuple[tuple[str, int, int], ...]) -> isl.Set:
    if not key:
        return stmt.domain
    # Constraints built through the API: parsing a string per block dominated whole-model planning time.
    space = stmt.domain.get_space()
    box = isl.BasicSet.universe(space)
    for dim, lo, hi in key:
        if dim not in stmt.dims:
            raise KeyError(f"{stmt.name} has no dim {dim}; its dims are {list(stmt.dims)}")
        box = box.add_constraint(isl.Constraint.ineq_from_names(space, {dim: 1, 1: -lo}))
        box = box.add_constraint(isl.Constraint.ineq_from_names(space, {dim: -1, 1: hi - 1}))
    return stmt.domain.intersect(box)


def footprint(stmt: Statement, block: Block | None = None) -> dict[str, isl.Set]:
    """Per tensor, the elements a block of the statement reads (halos included).

    >>> # for a 3x3 conv, a block of 2 output rows reads 4 input rows
    """
    return dict(_footprints(stmt, _key(block), "read"))


def write_footprint(stmt: Statement, block: Block | None = None) -> dict[str, isl.Set]:
    """Per tensor, the elements a block of the statement writes."""
    return dict(_footprints(stmt, _key(block), "write"))


def box_set(space_name: str, start: tuple[int, ...], stop: tuple[int, ...]) -> isl.Set:
    """The elements of a half-open box of a tensor.

    >>> box_set("X", (0, 2), (1, 4))
    Set("{ X[i0 = 0, i1] : 2 <= i1 <= 3 }")
    """
    # Bounds set through the API: isl's parser takes some 0.25 ms a set, which a NAS loop's lowering paid per tensor.
    space = isl.Space.set_alloc(isl.DEFAULT_CONTEXT, 0, len(start)).set_tuple_name(isl.dim_type.set, space_name)
    for axis in range(len(start)):
        space = space.set_dim_name(isl.dim_type.set, axis, f"i{axis}")
    box = isl.BasicSet.universe(space)
    for axis, (lo, hi) in enumerate(zip(start, stop, strict=True)):
        box = box.lower_bound_val(isl.dim_type.set, axis, lo).upper_bound_val(isl.dim_type.set, axis, hi - 1)
    return isl.Set.from_basic_set(box)


def writers(stmt: Statement, tensor: str, start: tuple[int, ...], stop: tuple[int, ...]) -> isl.Set:
    """The statement's domain points that write some element of a box of `tensor`: what it must compute for a
    consumer that needs that box."""
    return _writers(stmt, tensor, start, stop)


@functools.lru_cache(maxsize=1 << 16)
def _writers(stmt: Statement, tensor: str, start: tuple[int, ...], stop: tuple[int, ...]) -> isl.Set:
    found = None
    for access in stmt.writes:
        if access.tensor != tensor:
            continue
        elements = box_set(access.relation.get_tuple_name(isl.dim_type.out), start, stop)
        points = access.relation.intersect_range(elements).domain().intersect(stmt.domain)
        found = points if found is None else found.union(points)
    if found is None:
        raise KeyError(f"{stmt.name} does not write {tensor}")
    return found.coalesce()


def needed_elements(statements: Iterable[Statement], outputs: Mapping[str, isl.Set]) -> dict[str, isl.Set]:
    """Per tensor, the elements some element of `outputs` depends on: each output's footprint pulled back through
    the statements (in reverse program order) to the points that write what is needed, then forward through their
    reads. Rows no output depends on (the last row of an odd extent under a 2x2 pool, what a Slice drops) are not
    in it, so no legal program needs to move them.

    >>> # Relu over x[0:12] then Slice of 8 elements: x needs 8 elements, not 12
    """
    needed = dict(outputs)
    for stmt in reversed(list(statements)):
        points = None
        for access in stmt.writes:
            if access.tensor in needed:
                found = access.relation.intersect_range(needed[access.tensor]).domain().intersect(stmt.domain)
                points = found if points is None else points.union(found)
        if points is None or points.is_empty():
            continue
        for access in stmt.reads:
            elements = access.relation.intersect_domain(points).range()
            needed[access.tensor] = (needed[access.tensor].union(elements) if access.tensor in needed
                                     else elements).coalesce()
    return needed


def count(elements: isl.Set) -> int:
    """Number of integer points in a set; O(1) for boxes and strided boxes, isl's scanner otherwise.

    >>> count(isl.Set("{ X[i, j] : 0 <= i < 1000 and 0 <= j < 1000000 and exists e: j = 2e }"))
    500000000
    """
    return _count(elements)


def overlap(first: isl.Set, second: isl.Set) -> isl.Set:
    """Elements in both footprints: what the next tile can reuse from the last."""
    return first.intersect(second)


def reuse_elements(stmt: Statement, block: Block, next_block: Block) -> dict[str, int]:
    """Per tensor read, how many elements of `next_block`'s footprint were already in `block`'s."""
    now, then = footprint(stmt, block), footprint(stmt, next_block)
    return {tensor: count(overlap(now[tensor], then[tensor])) for tensor in then if tensor in now}


def flow_dependences(statements: Iterable[Statement]) -> list[Dependence]:
    """Every producer -> consumer relation between statements (tensors are written once, so no kills).

    >>> # dependences of a conv chain map each output point of conv2 back to the conv1 points it needs
    """
    statements = list(statements)
    writers: dict[str, list[tuple[Statement, Access]]] = {}
    for stmt in statements:
        for access in stmt.writes:
            writers.setdefault(access.tensor, []).append((stmt, access))
    dependences = []
    for sink in statements:
        for read in sink.reads:
            for source, write in writers.get(read.tensor, []):
                relation = write.relation.apply_range(read.relation.reverse())
                if not relation.is_empty():
                    dependences.append(Dependence(source, sink, read.tensor, relation))
    return dependences


def _key(block: Block | None) -> tuple[tuple[str, int, int], ...]:
    return tuple(sorted((dim, lo, hi) for dim, (lo, hi) in (block or {}).items()))


@functools.lru_cache(maxsize=1 << 16)
def _footprints(stmt: Statement, key: tuple[tuple[str, int, int], ...], kind: str) -> tuple[tuple[str, isl.Set], ...]:
    points = _block_points(stmt, key)
    found: dict[str, isl.Set] = {}
    for access in stmt.reads if kind == "read" else stmt.writes:
        elements = access.relation.intersect_domain(points).range()
        found[access.tensor] = found[access.tensor].union(elements) if access.tensor in found else elements
    return tuple((tensor, elements.coalesce()) for tensor, elements in found.items())


def _count(elements: isl.Set) -> int:
    elements = elements.coalesce()
    if elements.is_empty():
        return 0
    ndim = elements.dim(isl.dim_type.set)
    if ndim == 0:
        return 1
    # A set that is the product of its 1-D projections is counted dim by dim, never point by point.
    projections = [elements.project_out(isl.dim_type.set, axis + 1, ndim - axis - 1)
                   .project_out(isl.dim_type.set, 0, axis) for axis in range(ndim)]
    product = projections[0]
    for projection in projections[1:]:
        product = product.flat_product(projection)
    product = product.set_tuple_id(elements.get_tuple_id()) if elements.has_tuple_id() else product
    if product.is_equal(elements):
        return math.prod(_count_1d(projection) for projection in projections)
    return int(elements.count_val().to_python())


def _count_1d(elements: isl.Set) -> int:
    if elements.is_box():
        return int(elements.dim_max_val(0).to_python()) - int(elements.dim_min_val(0).to_python()) + 1
    return int(elements.count_val().to_python())
