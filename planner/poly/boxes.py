"""A tile's bounding boxes as closed forms in its bounds: one parametric isl query per kind of statement, compiled to
Python arithmetic, so that a search prices any tile size and position without asking isl again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import islpy as isl

from planner.poly.closed_forms import compile_bound, python_source, template
from planner.poly.footprints import box_set, spans
from planner.stmt import Access, Statement


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


@functools.lru_cache(maxsize=1 << 12)  # printing and rewriting the isl text costs as much as a small query
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
                axes.append(AxisBounds(used, compile_bound(python_source(build.expr_from_pw_aff(low)), arguments, 0),
                                       compile_bound(python_source(build.expr_from_pw_aff(high)), arguments, 1)))
            found.append((tensors.index(tensor), tuple(axes)))
        found += [(tensors.index(tensor), axes) for tensor, axes in fast.items()]
        return tuple(sorted(found, key=lambda item: item[0]))

    return functions(stmt.reads), functions(stmt.writes)


def affine_tile_boxes(stmt: Statement, block: dict[str, tuple[int, int]],
                      ) -> tuple[dict[str, tuple[tuple[int, ...], tuple[int, ...]]],
                                 dict[str, tuple[tuple[int, ...], tuple[int, ...]]]] | None:
    """The bounding boxes (start, stop per tensor) of what a block reads and writes, by arithmetic alone, when every
    tensor the statement touches is accessed once, through one affine function without gaps (`_affine_bounds`);
    None otherwise, or for a block that leaves the domain, and the caller asks isl. A tensor the block does not
    touch is left out, as isl's empty footprint is."""
    tiled = tuple(sorted(block))
    forms = _affine_forms(stmt, tiled)
    if forms is None:
        return None
    whole = spans(stmt)
    if any(dim not in whole or not whole[dim][0] <= lo < hi <= whole[dim][1] for dim, (lo, hi) in block.items()):
        return None
    found: list[dict[str, tuple[tuple[int, ...], tuple[int, ...]]]] = [{}, {}]
    for side, tensor, axes in forms:
        start, stop = [], []
        for bounds in axes:
            arguments = [v for dim in bounds.dims for v in block[dim]]
            start.append(bounds.start(*arguments))
            stop.append(bounds.stop(*arguments))
        if all(a < b for a, b in zip(start, stop, strict=True)):
            found[side][tensor] = (tuple(start), tuple(stop))
    return found[0], found[1]


@functools.lru_cache(maxsize=1 << 12)
def _affine_forms(stmt: Statement, tiled: tuple[str, ...],
                  ) -> tuple[tuple[int, str, tuple[AxisBounds, ...]], ...] | None:
    """(0 for read / 1 for written, tensor, closed forms per axis) of every tensor, or None when one is not simple."""
    if not stmt.domain.is_box() or any(dim not in stmt.dims for dim in tiled):
        return None
    tensors = [access.tensor for access in (*stmt.reads, *stmt.writes)]
    if len(set(tensors)) != len(tensors):  # a tensor read twice (Mul(x, x)) or read and written
        return None
    forms = []
    for side, accesses in enumerate((stmt.reads, stmt.writes)):
        for access in accesses:
            axes = _affine_bounds(stmt, access, tiled)
            if axes is None:
                return None
            forms.append((side, access.tensor, axes))
    return tuple(forms)


@functools.lru_cache(maxsize=1 << 12)
def _affine_bounds(stmt: Statement, access: Access, tiled: tuple[str, ...]) -> tuple[AxisBounds, ...] | None:
    """The closed forms without a parametric query, when the access is one affine function of the point, clipped
    only to the box the whole statement reads (padding), and each index it forms has no gaps (so clipping the
    range of a block gives that block's bounding box); None otherwise."""
    affine = _affine_function(stmt, access)
    if affine is None:
        return None
    start, stop, indices = affine
    extents = {dim: (lo, hi - 1) for dim, (lo, hi) in spans(stmt).items()}
    axes = []
    for axis, (constant, terms) in enumerate(indices):
        span = 0  # no gaps: every coefficient at most one more than what the smaller terms already cover
        for dim, c in sorted(terms.items(), key=lambda item: abs(item[1])):
            if abs(c) > span + 1:
                return None
            span += 0 if dim in tiled else abs(c) * (extents[dim][1] - extents[dim][0])
        # Integers only, so the dims left whole fold into the constant; the rest are closure constants of a
        # template that statements alike but for their sizes share.
        low = high = constant
        for dim, c in terms.items():
            if dim not in tiled:
                low += c * extents[dim][0 if c > 0 else 1]
                high += c * extents[dim][1 if c > 0 else 0]
        used = tuple(dim for dim in tiled if dim in terms)
        arguments = tuple(name for dim in used for name in (f"lo_{dim}", f"hi_{dim}"))
        first = [f"_k{i + 2} * {f'lo_{dim}' if terms[dim] > 0 else f'(hi_{dim} - 1)'}" for i, dim in enumerate(used)]
        last = [f"_k{i + 2} * {f'(hi_{dim} - 1)' if terms[dim] > 0 else f'lo_{dim}'}" for i, dim in enumerate(used)]
        coefficients = [terms[dim] for dim in used]
        axes.append(AxisBounds(
            used, template(f"max(_k0, {' + '.join(['_k1', *first])})", arguments, 2 + len(used))(
                start[axis], low, *coefficients, 0),
            template(f"min(_k0, {' + '.join(['_k1', *last])})", arguments, 2 + len(used))(
                stop[axis] - 1, high, *coefficients, 1), affine=True))
    return tuple(axes)


_Index = tuple[int, dict[str, int]]  # an index as its constant and its nonzero coefficients per dim


@functools.lru_cache(maxsize=1 << 12)
def _affine_function(stmt: Statement, access: Access,
                     ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[_Index, ...]] | None:
    """The box the access reads over the whole domain (start, stop) and its index per axis, when it is one affine
    function clipped only to that box; None otherwise. Apart from the tiled dims, so asked once per access."""
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
    start = tuple(whole.dim_min_val(axis).to_python() for axis in range(rank))
    stop = tuple(whole.dim_max_val(axis).to_python() + 1 for axis in range(rank))
    # The function over the whole domain, not its piece's: a piece may hold a condition on the point beyond the
    # clipping (a 1x1 depthwise conv with a 3x3 kernel reads its input only at the kernel's centre), which the
    # closed forms would not see.
    pieces: list[isl.MultiAff] = []
    function.foreach_piece(lambda _, multi: pieces.append(multi))
    clipped = isl.Map.from_multi_aff(pieces[0]).intersect_domain(stmt.domain) \
        .intersect_range(box_set(access.relation.get_tuple_name(isl.dim_type.out), start, stop))
    if not clipped.is_equal(access.relation):
        return None
    indices = []
    for axis in range(rank):
        (_, aff), = function.get_pw_aff(axis).get_pieces()
        if aff.dim(isl.dim_type.div):
            return None
        terms = {dim: aff.get_coefficient_val(isl.dim_type.in_, i).to_python() for i, dim in enumerate(stmt.dims)}
        indices.append((aff.get_constant_val().to_python(), {dim: c for dim, c in terms.items() if c}))
    return start, stop, tuple(indices)


@functools.lru_cache(maxsize=1 << 10)
def _parametric_images(stmt: Statement, tiled: tuple[str, ...], accesses: tuple[Access, ...],
                       ) -> tuple[isl.AstBuild, isl.Set, dict[str, isl.Set]]:
    """What a block with bounds lo_d <= d < hi_d on the `tiled` dims touches, per tensor, parametric in the bounds;
    and an AST builder that knows the bounds are a valid block."""
    params = [name for dim in tiled for name in (f"lo_{dim}", f"hi_{dim}")]
    inside = " and ".join(f"lo_{dim} <= {dim} < hi_{dim}" for dim in tiled) or "1 = 1"
    block = isl.Set(f"[{', '.join(params)}] -> {{ {stmt.name}[{', '.join(stmt.dims)}] : {inside} }}")
    points = stmt.domain.align_params(block.get_space()).intersect(block)
    whole = spans(stmt)
    valid = " and ".join(f"{whole[d][0]} <= lo_{d} < hi_{d} <= {whole[d][1]}" for d in tiled) or "1 = 1"
    context = isl.Set(f"[{', '.join(params)}] -> {{ : {valid} }}")
    build = isl.AstBuild.from_context(context)
    images: dict[str, isl.Set] = {}
    for access in accesses:
        image = access.relation.align_params(points.get_space()).intersect_domain(points).range()
        images[access.tensor] = images[access.tensor].union(image) if access.tensor in images else image
    return build, context, {tensor: image.coalesce() for tensor, image in images.items()}
