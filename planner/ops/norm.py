"""Normalisations and Softmax: one domain point per output element, which reads the whole row it normalises.

A row op's read relation leaves the normalised axes free (`{ S[i0, i1] -> X[i0, j1] }`), so a tile's footprint holds
complete rows: a tile may split rows apart from each other, never a row itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import islpy as isl

from planner.graph import Node
from planner.ops.elementwise import broadcast_index
from planner.ops.registry import Context, register
from planner.stmt import Statement

OPS_PER_ELEMENT = {"Softmax": 5, "LayerNormalization": 8, "BatchNormalization": 2}  # vector ops, as issued


def row_index(dims: Sequence[str], axes: Sequence[int]) -> list[str]:
    """Index that leaves `axes` free: row_index(["i0", "i1"], [1]) == ["i0", "j1"]."""
    return [f"j{axis}" if axis in axes else dim for axis, dim in enumerate(dims)]


def normalize_axis(ctx: Context, axis: int, rank: int) -> int:
    if not -rank <= axis < max(rank, 1):
        raise ctx.error(f"axis {axis} is out of range for rank {rank}")
    return axis % rank if rank else 0


def _elementwise_domain(ctx: Context, out: str) -> tuple[tuple[str, ...], isl.Set, tuple[int, ...]]:
    shape = ctx.shape(out)
    dims = tuple(f"i{axis}" for axis in range(len(shape)))
    return dims, ctx.domain(dims, shape), shape


@register("Softmax")
def lower_softmax(node: Node, ctx: Context) -> list[Statement]:
    x, out = ctx.input(0), ctx.only_first_output()
    dims, domain, shape = _elementwise_domain(ctx, out)
    rank = len(shape)
    # Before opset 13 Softmax coerced the input to 2-D at `axis`: a row is every dim from `axis` on.
    if ctx.graph.opset < 13:
        first = normalize_axis(ctx, int(node.attr("axis", 1)), rank)
        axes = list(range(first, rank))
    else:
        axes = [normalize_axis(ctx, int(node.attr("axis", -1)), rank)]
    read = ctx.access(domain, dims, x, row_index(dims, axes))
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, (read,), (write,), 0,
                      OPS_PER_ELEMENT["Softmax"] * math.prod(shape), "vector")]


@register("LayerNormalization")
def lower_layer_norm(node: Node, ctx: Context) -> list[Statement]:
    x, scale, bias, out = ctx.input(0), ctx.input(1), ctx.input(2), ctx.only_first_output()
    dims, domain, shape = _elementwise_domain(ctx, out)
    first = normalize_axis(ctx, int(node.attr("axis", -1)), len(shape))
    axes = list(range(first, len(shape)))
    reads = [ctx.access(domain, dims, x, row_index(dims, axes))]
    for param in (scale, bias):
        if param:
            reads.append(ctx.access(domain, dims, param, broadcast_index(ctx, param, shape, dims)))
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, tuple(reads), (write,), 0,
                      OPS_PER_ELEMENT["LayerNormalization"] * math.prod(shape), "vector")]


@register("BatchNormalization")
def lower_batch_norm(node: Node, ctx: Context) -> list[Statement]:
    if node.attr("training_mode", 0):
        raise ctx.error("training_mode=1 is not inference; only inference BatchNormalization is supported")
    out = ctx.only_first_output()
    dims, domain, shape = _elementwise_domain(ctx, out)
    if len(shape) < 2:
        raise ctx.error(f"input {shape} has no channel dim")
    reads = [ctx.access(domain, dims, ctx.input(0), dims)]
    for index in range(1, 5):
        param = ctx.input(index)
        if ctx.shape(param) != (shape[1],):
            raise ctx.error(f"input {param!r} has shape {ctx.shape(param)}, not ({shape[1]},) per channel")
        reads.append(ctx.access(domain, dims, param, [dims[1]]))
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, tuple(reads), (write,), 0,
                      OPS_PER_ELEMENT["BatchNormalization"] * math.prod(shape), "vector")]


@register("LRN")
def lower_lrn(node: Node, ctx: Context) -> list[Statement]:
    out = ctx.only_first_output()
    dims, domain, shape = _elementwise_domain(ctx, out)
    size = int(node.attr("size", 0))
    if size <= 0 or len(shape) < 2:
        raise ctx.error(f"size {size} must be positive over an input with a channel dim")
    below, above = (size - 1) // 2, -(-(size - 1) // 2)
    channel = dims[1]
    index = [dims[0], "j", *dims[2:]]
    read = ctx.access(domain, dims, ctx.input(0), index,
                      extra=f"{channel} - {below} <= j <= {channel} + {above}")
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, (read,), (write,), 0,
                      (size + 3) * math.prod(shape), "vector")]


@register("InstanceNormalization")
def lower_instance_norm(node: Node, ctx: Context) -> list[Statement]:
    out = ctx.only_first_output()
    dims, domain, shape = _elementwise_domain(ctx, out)
    if len(shape) < 3:
        raise ctx.error(f"input {shape} is not N x C x spatial")
    reads = [ctx.access(domain, dims, ctx.input(0), row_index(dims, range(2, len(shape))))]
    for param in (ctx.input(1), ctx.input(2)):
        if ctx.shape(param) != (shape[1],):
            raise ctx.error(f"input {param!r} has shape {ctx.shape(param)}, not ({shape[1]},) per channel")
        reads.append(ctx.access(domain, dims, param, [dims[1]]))
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, tuple(reads), (write,), 0,
                      OPS_PER_ELEMENT["LayerNormalization"] * math.prod(shape), "vector")]


@register("GroupNormalization")
def lower_group_norm(node: Node, ctx: Context) -> list[Statement]:
    """A point reads every element of its group: channels c with floor(c / (C / groups)) equal to its own."""
    out = ctx.only_first_output()
    dims, domain, shape = _elementwise_domain(ctx, out)
    groups = int(node.attr("num_groups", 0))
    if len(shape) < 2 or groups <= 0 or shape[1] % groups:
        raise ctx.error(f"num_groups {groups} does not divide the {shape[1] if len(shape) > 1 else 0} channels")
    per_group = shape[1] // groups
    index = row_index(dims, range(1, len(shape)))
    same_group = f"floor(j1 / {per_group}) = floor({dims[1]} / {per_group})"
    reads = [ctx.access(domain, dims, ctx.input(0), index, extra=same_group)]
    for param in (ctx.input(1), ctx.input(2)):
        # opset 18 gives scale and bias per group; opset 21 per channel
        if ctx.shape(param) == (shape[1],):
            reads.append(ctx.access(domain, dims, param, [dims[1]]))
        elif ctx.shape(param) == (groups,):
            reads.append(ctx.access(domain, dims, param, [f"floor({dims[1]} / {per_group})"]))
        else:
            raise ctx.error(f"input {param!r} has shape {ctx.shape(param)}, not per channel or per group")
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, tuple(reads), (write,), 0,
                      OPS_PER_ELEMENT["LayerNormalization"] * math.prod(shape), "vector")]
