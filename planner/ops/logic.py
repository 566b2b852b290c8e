"""Comparisons, logic, Where, Expand, Trilu and Range.

Comparisons and logic ops are elementwise with numpy broadcasting and write bool tensors (one byte an element in
DRAM and in the scratchpad); Where reads its condition and both branches the same way. Expand reads its input
broadcast to the output. Trilu reads only the triangle it keeps: `{ S[.., i, j] -> X[.., i, j] : j - i >= k }` for
the upper one; the rest of the output is zeros and reads nothing. Range has a data-dependent length unless all its
inputs are constant, in which case folding has already replaced it by its value.
"""

from __future__ import annotations

import math

from planner.graph import Node
from planner.ops.elementwise import broadcast_index, lower_elementwise
from planner.ops.registry import Context, register
from planner.ops.window import check_output
from planner.stmt import Statement

COMPARISONS = ("Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual")
LOGIC = ("Not", "And", "Or", "Xor", "BitwiseNot", "BitwiseAnd", "BitwiseOr", "BitwiseXor")

register(*COMPARISONS, *LOGIC, "Where", "Mod", "PRelu")(lower_elementwise)


@register("Expand")
def lower_expand(node: Node, ctx: Context) -> list[Statement]:
    x, out = ctx.input(0), ctx.only_first_output()
    target = [int(v) for v in ctx.value(ctx.input(1)).reshape(-1)]
    shape = ctx.shape(x)
    rank = max(len(shape), len(target))
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in (shape, target)]
    expected = []
    for a, b in zip(*padded, strict=True):
        if a != b and 1 not in (a, b):
            raise ctx.error(f"input {shape} does not broadcast to shape {target}")
        expected.append(max(a, b))
    check_output(ctx, tuple(expected), out)
    dims = [f"i{axis}" for axis in range(rank)]
    domain = ctx.domain(dims, expected)
    read = ctx.access(domain, dims, x, broadcast_index(ctx, x, expected, dims))
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, tuple(dims), domain, (read,), (write,), 0,
                      math.prod(expected), "move")]


@register("Trilu")
def lower_trilu(node: Node, ctx: Context) -> list[Statement]:
    x, out = ctx.input(0), ctx.only_first_output()
    shape = ctx.shape(x)
    if len(shape) < 2:
        raise ctx.error(f"input {shape} has fewer than 2 dims")
    k = int(ctx.value(ctx.input(1)).reshape(-1)[0]) if ctx.input(1) else 0
    check_output(ctx, shape, out)
    dims = [f"i{axis}" for axis in range(len(shape))]
    row, col = dims[-2], dims[-1]
    kept = f"{col} - {row} >= {k}" if node.attr("upper", 1) else f"{col} - {row} <= {k}"
    domain = ctx.domain(dims, shape)
    read = ctx.access(domain, dims, x, dims, extra=kept)
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, tuple(dims), domain, (read,), (write,), 0,
                      math.prod(shape), "vector")]


@register("Range")
def lower_range(node: Node, ctx: Context) -> list[Statement]:
    raise ctx.error("Range with inputs not known at planning time has a data-dependent length; only Range of "
                    "constants (folded before planning) is supported")
