"""Reductions (ReduceMean, ReduceSum, ReduceMax, ..., ArgMax): one domain point per input element, written onto the
reduced output element.

ArgMax and ArgMin reduce one axis and write int64 indices; `select_last_index` changes ties, not what is read.
"""

from __future__ import annotations

import math

from planner.graph import Node
from planner.ops.norm import normalize_axis
from planner.ops.registry import Context, register
from planner.ops.window import check_output
from planner.stmt import Statement

# The opset from which `axes` is an input rather than an attribute.
AXES_INPUT_SINCE = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceProd": 18,
                    "ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 18, "ReduceLogSumExp": 18,
                    "ReduceSumSquare": 18}
ARG_REDUCTIONS = ("ArgMax", "ArgMin")


@register(*AXES_INPUT_SINCE)
def lower_reduce(node: Node, ctx: Context) -> list[Statement]:
    shape = ctx.shape(ctx.input(0))
    if ctx.graph.opset >= AXES_INPUT_SINCE[node.op_type]:
        axes_input = ctx.input(1)
        axes = [int(a) for a in ctx.value(axes_input).reshape(-1)] if axes_input else []
    else:
        axes = list(node.attr("axes", ()))
    if not axes:
        axes = [] if node.attr("noop_with_empty_axes", 0) else list(range(len(shape)))
    return [_reduction(node, ctx, {normalize_axis(ctx, axis, len(shape)) for axis in axes})]


@register(*ARG_REDUCTIONS)
def lower_arg_reduce(node: Node, ctx: Context) -> list[Statement]:
    rank = len(ctx.shape(ctx.input(0)))
    return [_reduction(node, ctx, {normalize_axis(ctx, int(node.attr("axis", 0)), rank)})]


def _reduction(node: Node, ctx: Context, axes: set[int]) -> Statement:
    x, out = ctx.input(0), ctx.only_first_output()
    shape = ctx.shape(x)
    keepdims = bool(node.attr("keepdims", 1))
    dims = tuple(f"i{axis}" for axis in range(len(shape)))
    domain = ctx.domain(dims, shape)
    if keepdims:
        out_index = ["0" if axis in axes else dim for axis, dim in enumerate(dims)]
        expected = tuple(1 if axis in axes else extent for axis, extent in enumerate(shape))
    else:
        out_index = [dim for axis, dim in enumerate(dims) if axis not in axes]
        expected = tuple(extent for axis, extent in enumerate(shape) if axis not in axes)
    check_output(ctx, expected, out)
    read = ctx.access(domain, dims, x, dims)
    write = ctx.access(domain, dims, out, out_index)
    return Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, (read,), (write,), 0, math.prod(shape),
                     "vector")
