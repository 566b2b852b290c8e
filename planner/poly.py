"""Every isl query the scheduler needs: tile footprints (halos included), element counts, overlaps, dependences.

Tiles are blocks of a statement's iteration space, given as `{dim: (start, stop)}` half-open ranges on named dims;
dims left out span their whole extent. Results repeat a lot during a schedule search, so they are cached per
statement (statements hash by identity) and block.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
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
    names = [f"i{axis}" for axis in range(len(shape))]
    constraints = [f"0 <= {name} < {extent}" for name, extent in zip(names, shape, strict=True)]
    return isl.Set(f"{{ {space_name}[{', '.join(names)}] : {' and '.join(constraints) or '1 = 1'} }}")


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
    names = [f"i{axis}" for axis in range(len(start))]
    constraints = [f"{lo} <= {name} < {hi}" for name, lo, hi in zip(names, start, stop, strict=True)]
    return isl.Set(f"{{ {space_name}[{', '.join(names)}] : {' and '.join(constraints) or '1 = 1'} }}")


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


@dataclass(frozen=True, slots=True, eq=False)
class AxisBounds:
    """One axis of the box a tile touches, as closed forms in the tile's bounds: called with the `lo` and `hi` of
    every dim in `dims` (in that order), `start` and `stop` give the box's half-open range on the axis."""

    dims: tuple[str, ...]
    start: Callable[..., int]
    stop: Callable[..., int]
    affine: bool = False  # an affine index with no gaps: the box grows with the tile and the tiles' boxes overlap
    #                       by a fixed halo, so a larger tile never reads more in all


def tile_box_functions(stmt: Statement, tiled: tuple[str, ...],
                       ) -> tuple[dict[str, tuple[AxisBounds, ...]], dict[str, tuple[AxisBounds, ...]]]:
    """Per tensor read and written, the bounding box of a tile as functions of the tile's bounds on the `tiled`
    dims (the others span their whole extent): one parametric isl query per tensor and axis, compiled to Python
    arithmetic, so a search prices any tile size and position without asking isl again.

    Statements alike but for their names (the layers of a transformer) share one query.

    >>> # for a 3x3 conv with pads 1 on 16 rows: rows start at max(0, lo_y - 1) and stop at min(16, hi_y + 1)
    """
    key = (tiled, structure_key(stmt))
    if key not in _BOX_FUNCTIONS:
        _BOX_FUNCTIONS[key] = _tile_box_functions(stmt, tiled)
    reads, writes = _BOX_FUNCTIONS[key]
    order = list(dict.fromkeys(access.tensor for access in (*stmt.reads, *stmt.writes)))
    return ({order[i]: axes for i, axes in reads}, {order[i]: axes for i, axes in writes})


def structure_key(stmt: Statement) -> tuple[object, ...]:
    """The statement with its own and its tensors' names left out (tensors numbered in order of first access):
    equal for the repeated layers of a model, so that queries about one stand for all."""
    renames = {name: f"T{index}" for index, name in enumerate(dict.fromkeys(
        access.relation.get_tuple_name(isl.dim_type.out) for access in (*stmt.reads, *stmt.writes)))}

    def anonymous(text: str) -> str:
        return re.sub(r"\b\w+(?=\[)", lambda m: renames.get(m.group(0), "S" if m.group(0) == stmt.name
                                                               else m.group(0)), text)

    return (stmt.op_type, stmt.dims, anonymous(str(stmt.domain)), tuple(anonymous(str(a.relation)) for a in stmt.reads),
            tuple(anonymous(str(a.relation)) for a in stmt.writes))


_Functions = tuple[tuple[tuple[int, tuple[AxisBounds, ...]], ...], tuple[tuple[int, tuple[AxisBounds, ...]], ...]]
_BOX_FUNCTIONS: dict[tuple[object, ...], _Functions] = {}  # the first statement of its kind stands for the rest


def _tile_box_functions(stmt: Statement, tiled: tuple[str, ...]) -> _Functions:
    tensors = list(dict.fromkeys(access.tensor for access in (*stmt.reads, *stmt.writes)))

    def functions(accesses: tuple[Access, ...]) -> tuple[tuple[int, tuple[AxisBounds, ...]], ...]:
        # Each dim alone first (two parameters, cheap): that finds which dims move which axis, and gives the
        # answer outright for an axis moved by at most one dim. Only an axis that several dims move (a flattened
        # view, a grouped conv's channels) is asked again with all of their parameters at once, since isl's cost
        # grows fast with the number of parameters.
        fast = {}
        for tensor in dict.fromkeys(access.tensor for access in accesses):
            alike = [access for access in accesses if access.tensor == tensor]
            simple = _affine_bounds(stmt, alike[0], tiled) if len(alike) == 1 else None
            if simple is not None:
                fast[tensor] = simple
        accesses = tuple(access for access in accesses if access.tensor not in fast)
        alone: dict[tuple[str, int], list[tuple[str, isl.AstBuild, isl.PwAff, isl.PwAff]]] = {}
        constant: dict[tuple[str, int], tuple[isl.AstBuild, isl.PwAff, isl.PwAff]] = {}
        for dim in (tiled or ((),)) if accesses else ():
            build, valid, images = _parametric_images(stmt, (dim,) if dim else (), accesses)
            for tensor, image in images.items():
                for axis in range(image.dim(isl.dim_type.set)):
                    # gist: the bounds' own domain (a valid block) mentions the parameters without depending on them
                    low, high = image.dim_min(axis).gist(valid), image.dim_max(axis).gist(valid)
                    if dim and (low.involves_dims(isl.dim_type.param, 0, 2)
                                or high.involves_dims(isl.dim_type.param, 0, 2)):
                        alone.setdefault((tensor, axis), []).append((str(dim), build, low, high))
                    else:
                        constant.setdefault((tensor, axis), (build, low, high))
        found = []
        for tensor in dict.fromkeys(access.tensor for access in accesses):
            axes: list[AxisBounds] = []
            rank = next(a for a in accesses if a.tensor == tensor).relation.dim(isl.dim_type.out)
            for axis in range(rank):
                movers = alone.get((tensor, axis), [])
                if len(movers) > 1:
                    used = tuple(dim for dim, *_ in movers)
                    build, valid, images = _parametric_images(stmt, used, accesses)
                    low, high = images[tensor].dim_min(axis).gist(valid), images[tensor].dim_max(axis).gist(valid)
                elif movers:
                    (dim, build, low, high), = movers
                    used = (dim,)
                else:
                    used = ()
                    build, low, high = constant[(tensor, axis)]
                arguments = [name for dim in used for name in (f"lo_{dim}", f"hi_{dim}")]
                axes.append(AxisBounds(used, _compile(_python(build.expr_from_pw_aff(low)), arguments, 0),
                                       _compile(_python(build.expr_from_pw_aff(high)), arguments, 1)))
            found.append((tensors.index(tensor), tuple(axes)))
        found += [(tensors.index(tensor), axes) for tensor, axes in fast.items()]
        return tuple(sorted(found, key=lambda item: item[0]))

    return functions(stmt.reads), functions(stmt.writes)


def _affine_bounds(stmt: Statement, access: Access, tiled: tuple[str, ...]) -> tuple[AxisBounds, ...] | None:
    """The closed forms without a parametric query, when the access is one affine function of the point, clipped
    only to the box the whole statement reads (padding), and each index it forms has no gaps (so clipping the
    range of a block gives that block's bounding box); None otherwise."""
    try:
        function = access.relation.as_pw_multi_aff()
    except isl.Error:
        return None
    if function.n_piece() != 1:
        return None
    whole = access.relation.range()
    if whole.is_empty():
        return None
    rank = access.relation.dim(isl.dim_type.out)
    start = [whole.dim_min_val(axis).to_python() for axis in range(rank)]
    stop = [whole.dim_max_val(axis).to_python() + 1 for axis in range(rank)]
    clipped = isl.Map.from_pw_multi_aff(function).intersect_domain(stmt.domain) \
        .intersect_range(box_set(access.relation.get_tuple_name(isl.dim_type.out), tuple(start), tuple(stop)))
    if not clipped.is_equal(access.relation):
        return None
    extents = {dim: (stmt.domain.dim_min_val(axis).to_python(), stmt.domain.dim_max_val(axis).to_python())
               for axis, dim in enumerate(stmt.dims)}
    axes = []
    for axis in range(rank):
        (_, aff), = function.get_pw_aff(axis).get_pieces()
        if aff.dim(isl.dim_type.div):
            return None
        terms = {dim: aff.get_coefficient_val(isl.dim_type.in_, i).to_python() for i, dim in enumerate(stmt.dims)}
        terms = {dim: c for dim, c in terms.items() if c}
        span = 0  # no gaps: every coefficient at most one more than what the smaller terms already cover
        for dim, c in sorted(terms.items(), key=lambda item: abs(item[1])):
            if abs(c) > span + 1:
                return None
            span += 0 if dim in tiled else abs(c) * (extents[dim][1] - extents[dim][0])
        low, high = [str(aff.get_constant_val().to_python())], [str(aff.get_constant_val().to_python())]
        for dim, c in terms.items():
            first, last = (f"lo_{dim}", f"(hi_{dim} - 1)") if dim in tiled else extents[dim]
            low.append(f"{c} * {first if c > 0 else last}")
            high.append(f"{c} * {last if c > 0 else first}")
        used = tuple(dim for dim in tiled if dim in terms)
        arguments = [name for dim in used for name in (f"lo_{dim}", f"hi_{dim}")]
        axes.append(AxisBounds(used, _compile(f"max({start[axis]}, {' + '.join(low)})", arguments, 0),
                               _compile(f"min({stop[axis] - 1}, {' + '.join(high)})", arguments, 1), affine=True))
    return tuple(axes)


@functools.lru_cache(maxsize=1 << 10)
def _parametric_images(stmt: Statement, tiled: tuple[str, ...], accesses: tuple[Access, ...],
                       ) -> tuple[isl.AstBuild, isl.Set, dict[str, isl.Set]]:
    """What a block with bounds lo_d <= d < hi_d on the `tiled` dims touches, per tensor, parametric in the bounds;
    and an AST builder that knows the bounds are a valid block."""
    params = [name for dim in tiled for name in (f"lo_{dim}", f"hi_{dim}")]
    inside = " and ".join(f"lo_{dim} <= {dim} < hi_{dim}" for dim in tiled) or "1 = 1"
    block = isl.Set(f"[{', '.join(params)}] -> {{ {stmt.name}[{', '.join(stmt.dims)}] : {inside} }}")
    points = stmt.domain.align_params(block.get_space()).intersect(block)
    spans = {dim: (stmt.domain.dim_min_val(stmt.dims.index(dim)).to_python(),
                   stmt.domain.dim_max_val(stmt.dims.index(dim)).to_python() + 1) for dim in tiled}
    valid = " and ".join(f"{lo} <= lo_{d} < hi_{d} <= {hi}" for d, (lo, hi) in spans.items()) or "1 = 1"
    context = isl.Set(f"[{', '.join(params)}] -> {{ : {valid} }}")
    build = isl.AstBuild.from_context(context)
    images: dict[str, isl.Set] = {}
    for access in accesses:
        image = access.relation.align_params(points.get_space()).intersect_domain(points).range()
        images[access.tensor] = images[access.tensor].union(image) if access.tensor in images else image
    return build, context, {tensor: image.coalesce() for tensor, image in images.items()}


_AST_OPS = {"add": "+", "sub": "-", "mul": "*", "div": "//", "fdiv_q": "//", "pdiv_q": "//", "pdiv_r": "%",
            "zdiv_r": "%", "eq": "==", "le": "<=", "lt": "<", "ge": ">=", "gt": ">", "and_": "and",
            "and_then": "and", "or_": "or", "or_else": "or"}


def _python(expr: isl.AstExpr) -> str:
    kind = expr.get_type()
    if kind == isl.ast_expr_type.int:
        return str(expr.int_get_val().to_python())
    if kind == isl.ast_expr_type.id:
        return str(expr.id_get_id().get_name())
    op = str(expr.op_get_type()).rsplit(".", 1)[-1]
    args = [_python(expr.op_get_arg(i)) for i in range(expr.op_get_n_arg())]
    if op in _AST_OPS:
        return f"({f' {_AST_OPS[op]} '.join(args)})"
    if op in ("max", "min"):
        return f"{op}({', '.join(args)})"
    if op == "minus":
        return f"(-{args[0]})"
    if op in ("select", "cond"):
        return f"({args[1]} if {args[0]} else {args[2]})"
    raise ValueError(f"isl expression {expr.to_C_str()} uses {op}, which has no Python form here")


def _compile(source: str, arguments: list[str], extra: int) -> Callable[..., int]:
    # Source generated from isl's own expression tree (never from user text), compiled once per kind of statement.
    function: Callable[..., int] = eval(f"lambda {', '.join(arguments)}: {source} + {extra}",
                                        {"max": max, "min": min})
    return function
