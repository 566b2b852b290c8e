"""Data movement: Concat, Split, Slice, Pad and Transpose, lowered as copies with affine index maps.

Concat and Split lower to one statement per input (or output), each writing (or reading) its own slab, so a
schedule can place every part where its producer or consumer is.
"""

from __future__ import annotations

import math

import islpy as isl

from planner.graph import Node
from planner.ops.norm import normalize_axis
from planner.ops.registry import Context, register
from planner.ops.window import check_output
from planner.poly import tensor_set
from planner.stmt import Access, Statement


def _dims(rank: int) -> tuple[str, ...]:
    return tuple(f"i{axis}" for axis in range(rank))


def _copy(ctx: Context, node: Node, part: int | None, source: str, source_index: list[str], target: str,
          target_index: list[str], extents: tuple[int, ...]) -> Statement:
    dims = _dims(len(extents))
    domain = ctx.domain(dims, extents, part=part)
    read = ctx.access(domain, dims, source, source_index)
    write = ctx.access(domain, dims, target, target_index)
    return Statement(ctx.stmt_name(part), node.name, node.op_type, dims, domain, (read,), (write,), 0,
                     math.prod(extents), "move")


@register("Concat")
def lower_concat(node: Node, ctx: Context) -> list[Statement]:
    out = ctx.only_first_output()
    rank = len(ctx.shape(out))
    axis = normalize_axis(ctx, int(node.attr("axis", 0 if ctx.graph.opset < 4 else 1)), rank)
    dims, offset, parts = _dims(rank), 0, []
    for part, name in enumerate(n for n in node.inputs if n):
        shape = ctx.shape(name)
        index = [f"{dim} + {offset}" if a == axis else dim for a, dim in enumerate(dims)]
        if shape[axis]:
            parts.append(_copy(ctx, node, part, name, list(dims), out, index, shape))
        offset += shape[axis]
    check_output(ctx, (*ctx.shape(out)[:axis], offset, *ctx.shape(out)[axis + 1:]), out)
    return parts


@register("Split")
def lower_split(node: Node, ctx: Context) -> list[Statement]:
    source = ctx.input(0)
    shape = ctx.shape(source)
    axis = normalize_axis(ctx, int(node.attr("axis", 0)), len(shape))
    dims, offset, parts = _dims(len(shape)), 0, []
    for part, name in enumerate(node.outputs):
        extents = ctx.shape(name)
        if name and extents[axis]:
            index = [f"{dim} + {offset}" if a == axis else dim for a, dim in enumerate(dims)]
            parts.append(_copy(ctx, node, part, source, index, name, list(dims), extents))
        offset += extents[axis]
    if offset != shape[axis]:
        raise ctx.error(f"outputs cover {offset} of the {shape[axis]} elements along axis {axis}")
    return parts


@register("Slice")
def lower_slice(node: Node, ctx: Context) -> list[Statement]:
    source, out = ctx.input(0), ctx.only_first_output()
    shape = ctx.shape(source)
    if ctx.graph.opset < 10:
        starts, ends = list(node.attr("starts")), list(node.attr("ends"))
        axes = list(node.attr("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts = [int(v) for v in ctx.value(ctx.input(1)).reshape(-1)]
        ends = [int(v) for v in ctx.value(ctx.input(2)).reshape(-1)]
        axes = [int(v) for v in ctx.value(ctx.input(3)).reshape(-1)] if ctx.input(3) else list(range(len(starts)))
        steps = [int(v) for v in ctx.value(ctx.input(4)).reshape(-1)] if ctx.input(4) else [1] * len(starts)
    dims = _dims(len(shape))
    index, extents = list(dims), list(shape)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if step == 0:
            raise ctx.error("a step of 0")
        axis = normalize_axis(ctx, axis, len(shape))
        picked = range(shape[axis])[start:end:step]  # numpy's slicing rules, which ONNX Slice follows
        index[axis] = f"{picked.start} + {picked.step}*{dims[axis]}"
        extents[axis] = len(picked)
    check_output(ctx, tuple(extents), out)
    if not math.prod(extents):
        return []
    return [_copy(ctx, node, None, source, index, out, list(dims), tuple(extents))]


@register("Transpose")
def lower_transpose(node: Node, ctx: Context) -> list[Statement]:
    source, out = ctx.input(0), ctx.only_first_output()
    shape = ctx.shape(source)
    perm = list(node.attr("perm", range(len(shape) - 1, -1, -1)))
    if sorted(perm) != list(range(len(shape))):
        raise ctx.error(f"perm {perm} is not a permutation of {len(shape)} axes")
    dims = _dims(len(shape))
    index = [dims[perm.index(axis)] for axis in range(len(shape))]
    extents = tuple(shape[axis] for axis in perm)
    check_output(ctx, extents, out)
    return [_copy(ctx, node, None, source, index, out, list(dims), extents)]


@register("Pad")
def lower_pad(node: Node, ctx: Context) -> list[Statement]:
    source, out = ctx.input(0), ctx.only_first_output()
    shape = ctx.shape(source)
    rank = len(shape)
    mode = node.attr("mode", "constant")
    if ctx.graph.opset < 11:
        pads = list(node.attr("pads", node.attr("paddings", ())))
    else:
        pads = [int(v) for v in ctx.value(ctx.input(1)).reshape(-1)]
    axes = list(range(rank))
    if ctx.input(3):
        axes = [normalize_axis(ctx, int(a), rank) for a in ctx.value(ctx.input(3)).reshape(-1)]
    if len(pads) != 2 * len(axes):
        raise ctx.error(f"{len(pads)} pads for {len(axes)} axes")
    begin, end = [0] * rank, [0] * rank
    for position, axis in enumerate(axes):
        begin[axis], end[axis] = pads[position], pads[position + len(axes)]
    extents = tuple(n + b + e for n, b, e in zip(shape, begin, end, strict=True))
    if any(extent < 0 for extent in extents):
        raise ctx.error(f"pads {pads} crop more than the input {shape}")
    check_output(ctx, extents, out)
    if mode in ("reflect", "wrap") and any(max(b, e) > n - (mode == "reflect")
                                           for n, b, e in zip(shape, begin, end, strict=True)):
        raise ctx.error(f"{mode} pads {pads} reach beyond the input {shape}")
    dims = _dims(rank)
    domain = ctx.domain(dims, extents)
    pieces = [_pad_axis(ctx, mode, n, b) for n, b in zip(shape, begin, strict=True)]
    relation = isl.Map("{ [] -> [] }")
    for piece in pieces:
        relation = relation.flat_product(piece)
    relation = (relation.set_tuple_name(isl.dim_type.in_, domain.get_tuple_name())
                .set_tuple_name(isl.dim_type.out, ctx.space(source)).intersect_domain(domain))
    reads = [Access(source, relation.intersect_range(tensor_set(ctx.space(source), shape)))]
    if ctx.input(2):
        reads.append(ctx.access(domain, dims, ctx.input(2), [] if not ctx.shape(ctx.input(2)) else ["0"]))
    write = ctx.access(domain, dims, out, list(dims))
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, tuple(reads), (write,), 0,
                      math.prod(extents), "move")]


def _pad_axis(ctx: Context, mode: str, extent: int, before: int) -> isl.Map:
    """The 1-D relation from an output coordinate to the input coordinate it copies, by pad mode."""
    inside = f"[o] -> [o - {before}] : {before} <= o < {before + extent}"
    if mode == "constant":
        return isl.Map(f"{{ {inside} }}")
    if mode == "edge":
        return isl.Map(f"{{ {inside}; [o] -> [0] : o < {before}; [o] -> [{extent - 1}] : o >= {before + extent} }}")
    if mode == "reflect":
        return isl.Map(f"{{ {inside}; [o] -> [{before} - o] : o < {before}; "
                       f"[o] -> [{2 * extent - 2 + before} - o] : o >= {before + extent} }}")
    if mode == "wrap":
        return isl.Map(f"{{ {inside}; [o] -> [o - {before} + {extent}] : o < {before}; "
                       f"[o] -> [o - {before} - {extent}] : o >= {before + extent} }}")
    raise ctx.error(f"pad mode {mode!r} is not one of constant, edge, reflect, wrap")
