"""Gather, GatherElements and GatherND.

- Constant indices (torch.export writes Gather with a constant scalar or 1-D index for `select` and `as_strided`)
  make a copy with a fixed index map, like Slice: a scalar or an arithmetic progression is one affine relation, any
  other index list a union of one piece per index. GatherElements and GatherND with constant indices are exact
  unions of one piece per index element up to `EXACT_LIMIT` elements; past it their relation is a sound
  over-approximation (the whole gathered axes), which `tests/planner/test_ops_new.py` checks as a superset.
- Data-dependent indices (an embedding lookup of token ids) on a constant or input table become a statement with an
  `IndirectRead`: it reads the indices through an affine access, and staging loads the rows they name with an
  indirect DMA. The table has no access relation: which rows are read is known only at run time.
"""

from __future__ import annotations

import math

import numpy as np

from planner.graph import Node
from planner.ops.norm import normalize_axis
from planner.ops.registry import Context, register
from planner.ops.window import check_output
from planner.stmt import Access, IndirectRead, Statement

EXACT_LIMIT = 1024  # index elements up to which a constant GatherElements / GatherND relation is exact


@register("Gather")
def lower_gather(node: Node, ctx: Context) -> list[Statement]:
    data, indices, out = ctx.input(0), ctx.input(1), ctx.only_first_output()
    shape, index_shape = ctx.shape(data), ctx.shape(indices)
    axis = normalize_axis(ctx, int(node.attr("axis", 0)), len(shape))
    extents = (*shape[:axis], *index_shape, *shape[axis + 1:])
    check_output(ctx, extents, out)
    dims = [f"i{position}" for position in range(len(extents))]
    outer, picked, inner = dims[:axis], dims[axis:axis + len(index_shape)], dims[axis + len(index_shape):]
    domain = ctx.domain(dims, extents)
    write = ctx.access(domain, dims, out, dims)
    if indices not in ctx.graph.values:
        if ctx.graph.tensors[data].kind == "activation":
            raise ctx.error(f"indices {indices!r} and data {data!r} are both computed at run time; a data-dependent "
                            "Gather needs a constant or model-input table")
        read = ctx.access(domain, dims, indices, picked)
        row_elements = math.prod(shape[:axis]) * math.prod(shape[axis + 1:])
        return [Statement(ctx.stmt_name(), node.name, node.op_type, tuple(dims), domain, (read,), (write,), 0,
                          math.prod(extents) // max(1, row_elements), "move",
                          IndirectRead(data, axis, indices, tuple(picked)))]
    values = _normalized(ctx, ctx.value(indices), shape[axis])
    if not math.prod(extents):
        return []
    pieces = _pick(values.reshape(-1), picked, index_shape)
    relation = ctx.access(domain, dims, data, [*outer, "p", *inner], extra=f"({pieces})").relation
    return [Statement(ctx.stmt_name(), node.name, node.op_type, tuple(dims), domain, (Access(data, relation),),
                      (write,), 0, math.prod(extents), "move")]


def _normalized(ctx: Context, values: np.ndarray, extent: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < -extent or values.max() >= extent):
        raise ctx.error(f"constant indices reach {int(values.min())}..{int(values.max())}, outside an axis of "
                        f"{extent}")
    return np.where(values < 0, values + extent, values)


def _pick(flat: np.ndarray, picked: list[str], index_shape: tuple[int, ...]) -> str:
    """Constraints on the read coordinate p: p = value at the flat position of the picked dims."""
    if not picked:
        return f"p = {int(flat[0])}"
    position = " + ".join(f"{math.prod(index_shape[k + 1:])}*{dim}" for k, dim in enumerate(picked))
    step = int(flat[1] - flat[0]) if len(flat) > 1 else 0
    if np.array_equal(flat, flat[0] + step * np.arange(len(flat))):
        return f"p = {int(flat[0])} + {step}*({position})"
    return " or ".join(f"(p = {int(v)} and {position} = {k})" for k, v in enumerate(flat))


@register("GatherElements")
def lower_gather_elements(node: Node, ctx: Context) -> list[Statement]:
    data, indices, out = ctx.input(0), ctx.input(1), ctx.only_first_output()
    shape, extents = ctx.shape(data), ctx.shape(indices)
    axis = normalize_axis(ctx, int(node.attr("axis", 0)), len(shape))
    check_output(ctx, extents, out)
    values = _normalized(ctx, _constant_indices(ctx, indices), shape[axis])
    dims = [f"i{position}" for position in range(len(extents))]
    domain = ctx.domain(dims, extents)
    index = [f"j{axis}" if position == axis else dim for position, dim in enumerate(dims)]
    if values.size <= EXACT_LIMIT:
        pieces = " or ".join(f"({' and '.join(f'{d} = {c}' for d, c in zip(dims, point, strict=True))} and "
                             f"j{axis} = {int(values[point])})" for point in np.ndindex(*extents))
        read = ctx.access(domain, dims, data, index, extra=f"({pieces or '1 = 0'})")
    else:  # sound: the whole gathered axis
        read = ctx.access(domain, dims, data, index)
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, tuple(dims), domain, (read,), (write,), 0,
                      math.prod(extents), "move")]


@register("GatherND")
def lower_gather_nd(node: Node, ctx: Context) -> list[Statement]:
    data, indices, out = ctx.input(0), ctx.input(1), ctx.only_first_output()
    shape, index_shape = ctx.shape(data), ctx.shape(indices)
    batch = int(node.attr("batch_dims", 0))
    depth = index_shape[-1] if index_shape else 0
    if not index_shape or batch + depth > len(shape) or tuple(index_shape[:batch]) != tuple(shape[:batch]):
        raise ctx.error(f"indices {index_shape} with batch_dims {batch} do not index data {shape}")
    values = _constant_indices(ctx, indices)
    values = np.stack([_normalized(ctx, values[..., k], shape[batch + k]) for k in range(depth)], axis=-1) \
        if depth else values
    extents = (*index_shape[:-1], *shape[batch + depth:])
    check_output(ctx, extents, out)
    dims = [f"i{position}" for position in range(len(extents))]
    lead = len(index_shape) - 1
    picked = [f"j{k}" for k in range(depth)]
    index = [*dims[:batch], *picked, *dims[lead:]]
    domain = ctx.domain(dims, extents)
    if math.prod(index_shape[:-1]) <= EXACT_LIMIT:
        pieces = " or ".join(
            "(" + " and ".join([*(f"{d} = {c}" for d, c in zip(dims[:lead], point, strict=True)),
                                *(f"{j} = {int(v)}" for j, v in zip(picked, values[point], strict=True))] or ["1 = 1"])
            + ")" for point in np.ndindex(*index_shape[:-1]))
        read = ctx.access(domain, dims, data, index, extra=f"({pieces or '1 = 0'})")
    else:  # sound: the whole gathered axes
        read = ctx.access(domain, dims, data, index)
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, tuple(dims), domain, (read,), (write,), 0,
                      math.prod(extents), "move")]


def _constant_indices(ctx: Context, indices: str) -> np.ndarray:
    if indices not in ctx.graph.values:
        raise ctx.error(f"indices {indices!r} are computed at run time; {ctx.node.op_type} is supported with constant "
                        "indices only")
    return np.asarray(ctx.value(indices), dtype=np.int64)
