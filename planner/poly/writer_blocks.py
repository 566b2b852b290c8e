"""The points that write a box of a tensor, by arithmetic, for the writes that are a translation of the point.

A fusion group pulls each tile back through its statements by asking, per statement, which block computes the box
its readers want (planner.tiling.block_writing); whole-model planning asks that thousands of times with boxes that
differ from query to query, so an isl query each time (a set parsed, intersected, projected) dominated the search.
Most writes are a translation: each axis of the element written is one dim of the point plus a constant (an
Identity, a conv's output, a piece of a Concat at its offset). The points that write a box then form a box too, the
written box moved back by the constants and clipped to the domain, and its bounds are found without isl. Any other
write (strided, flattened, with conditions of its own) is answered by isl.
"""

from __future__ import annotations

import functools

import islpy as isl

from planner.stmt import Statement

Translation = tuple[tuple[int | None, int], ...]  # per axis written: (the dim's position, or None, and the constant)


def translated_writers(stmt: Statement, tensor: str, start: tuple[int, ...], stop: tuple[int, ...],
                       ) -> tuple[bool, dict[str, tuple[int, int]] | None]:
    """(whether the write is a translation, and then the half-open range of every dim over the points writing some
    element of the box, or None when no point does).

    >>> # an Identity S[i, j] -> Y[i, j] over 4 x 4: the box [1, 3) x [0, 4) is written by i in [1, 3), j in [0, 4)
    """
    form = _translation(stmt, tensor)
    if form is None:
        return False, None
    spans = _spans(stmt)
    ranges = list(spans)
    for (position, constant), lo, hi in zip(form, start, stop, strict=True):
        if position is None:
            if not lo <= constant < hi:
                return True, None
            continue
        low, high = ranges[position]
        ranges[position] = (max(low, lo - constant), min(high, hi - constant))
    if any(lo >= hi for lo, hi in ranges):
        return True, None
    return True, dict(zip(stmt.dims, ranges, strict=True))


@functools.lru_cache(maxsize=1 << 12)
def _spans(stmt: Statement) -> tuple[tuple[int, int], ...]:
    return tuple((stmt.domain.dim_min_val(axis).to_python(), stmt.domain.dim_max_val(axis).to_python() + 1)
                 for axis in range(len(stmt.dims)))


@functools.lru_cache(maxsize=1 << 12)
def _translation(stmt: Statement, tensor: str) -> Translation | None:
    """Per axis of `tensor`, the dim that moves it (with coefficient 1) and the constant added, when the statement's
    domain is a box, it writes the tensor through one access, that access is one affine function over the domain
    with nothing else constraining it, and no dim moves two axes; None otherwise."""
    accesses = [access for access in stmt.writes if access.tensor == tensor]
    if len(accesses) != 1 or not stmt.domain.is_box():
        return None
    relation = accesses[0].relation
    try:
        function = relation.as_pw_multi_aff()
    except isl.Error:
        return None
    if function.n_piece() != 1:
        return None
    pieces: list[isl.MultiAff] = []
    function.foreach_piece(lambda _, multi: pieces.append(multi))
    if not isl.Map.from_multi_aff(pieces[0]).intersect_domain(stmt.domain).is_equal(relation):
        return None
    form: list[tuple[int | None, int]] = []
    for axis in range(relation.dim(isl.dim_type.out)):
        aff = pieces[0].get_aff(axis)
        if aff.dim(isl.dim_type.div) or aff.involves_dims(isl.dim_type.param, 0, aff.dim(isl.dim_type.param)):
            return None
        terms = {i: aff.get_coefficient_val(isl.dim_type.in_, i).to_python() for i in range(len(stmt.dims))}
        terms = {i: c for i, c in terms.items() if c}
        constant = aff.get_constant_val().to_python()
        if not isinstance(constant, int) or len(terms) > 1 or any(c != 1 for c in terms.values()):
            return None
        form.append((next(iter(terms), None), constant))
    moved = [position for position, _ in form if position is not None]
    if len(moved) != len(set(moved)):
        return None
    return tuple(form)
