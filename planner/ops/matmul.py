"""Gemm and MatMul: the domain is output points times the reduction axis k.

MatMul follows numpy: leading batch dims broadcast, a 1-D left operand drops m and a 1-D right operand drops n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from planner.graph import Node
from planner.ops.elementwise import broadcast_index
from planner.ops.registry import Context, register
from planner.ops.window import check_output
from planner.stmt import Statement


@register("Gemm")
def lower_gemm(node: Node, ctx: Context) -> list[Statement]:
    a, b, c, out = ctx.input(0), ctx.input(1), ctx.input(2), ctx.only_first_output()
    a_shape, b_shape = ctx.shape(a), ctx.shape(b)
    if len(a_shape) != 2 or len(b_shape) != 2:
        raise ctx.error(f"Gemm operands must be 2-D, not {a_shape} and {b_shape}")
    trans_a, trans_b = bool(node.attr("transA", 0)), bool(node.attr("transB", 0))
    m, k = a_shape[::-1] if trans_a else a_shape
    k_b, n = b_shape[::-1] if trans_b else b_shape
    if k != k_b:
        raise ctx.error(f"inner dims differ: A {a_shape} (transA={int(trans_a)}) and B {b_shape} "
                        f"(transB={int(trans_b)})")
    check_output(ctx, (m, n), out)
    dims = ("m", "n", "k")
    domain = ctx.domain(dims, (m, n, k))
    reads = [ctx.access(domain, dims, a, ["k", "m"] if trans_a else ["m", "k"]),
             ctx.access(domain, dims, b, ["n", "k"] if trans_b else ["k", "n"])]
    if c:
        reads.append(ctx.access(domain, dims, c, broadcast_index(ctx, c, (m, n), ("m", "n"))))
    write = ctx.access(domain, dims, out, ["m", "n"])
    return [Statement(ctx.stmt_name(), node.name, "Gemm", dims, domain, tuple(reads), (write,), m * n * k, 0,
                      "tensor")]


@register("MatMul")
def lower_matmul(node: Node, ctx: Context) -> list[Statement]:
    a, b, out = ctx.input(0), ctx.input(1), ctx.only_first_output()
    a_shape, b_shape = ctx.shape(a), ctx.shape(b)
    if not a_shape or not b_shape:
        raise ctx.error("MatMul operands must have at least one dim")
    a_vector, b_vector = len(a_shape) == 1, len(b_shape) == 1
    k = a_shape[-1]
    k_b = b_shape[0] if b_vector else b_shape[-2]
    if k != k_b:
        raise ctx.error(f"inner dims differ: {a_shape} @ {b_shape}")
    batch_a, batch_b = a_shape[:-2], b_shape[:-2]
    batch = _broadcast(ctx, batch_a, batch_b)
    batch_dims = [f"b{axis}" for axis in range(len(batch))]
    row = [] if a_vector else ["m"]
    col = [] if b_vector else ["n"]
    dims = (*batch_dims, *row, *col, "k")
    extents = (*batch, *([] if a_vector else [a_shape[-2]]), *([] if b_vector else [b_shape[-1]]), k)
    check_output(ctx, extents[:-1], out)
    domain = ctx.domain(dims, extents)
    a_index = _batch_index(batch_a, batch, batch_dims) + row + ["k"]
    b_index = [*_batch_index(batch_b, batch, batch_dims), "k", *col]
    reads = (ctx.access(domain, dims, a, a_index), ctx.access(domain, dims, b, b_index))
    write = ctx.access(domain, dims, out, [*batch_dims, *row, *col])
    return [Statement(ctx.stmt_name(), node.name, "MatMul", dims, domain, reads, (write,), math.prod(extents), 0,
                      "tensor")]


def _broadcast(ctx: Context, first: Sequence[int], second: Sequence[int]) -> tuple[int, ...]:
    rank = max(len(first), len(second))
    padded = [(1,) * (rank - len(shape)) + tuple(shape) for shape in (first, second)]
    result = []
    for x, y in zip(*padded, strict=True):
        if x != y and 1 not in (x, y):
            raise ctx.error(f"batch dims {tuple(first)} and {tuple(second)} do not broadcast")
        result.append(max(x, y))
    return tuple(result)


def _batch_index(own: Sequence[int], batch: Sequence[int], dims: Sequence[str]) -> list[str]:
    offset = len(batch) - len(own)
    return [dims[axis + offset] if extent == batch[axis + offset] else "0" for axis, extent in enumerate(own)]
