"""Pooling: windowed pools over output points times the window; global pools over every input point.

Window positions that fall in the padding read nothing (the access relation is clipped to the input).
"""

from __future__ import annotations

import math

from planner.graph import Node
from planner.ops.registry import Context, register
from planner.ops.window import check_output, spatial_names, window
from planner.stmt import Statement


@register("MaxPool", "AveragePool")
def lower_pool(node: Node, ctx: Context) -> list[Statement]:
    x, out = ctx.input(0), ctx.only_first_output()
    x_shape = ctx.shape(x)
    if len(x_shape) < 3:
        raise ctx.error(f"input {x_shape} must be N x C x spatial")
    kernel = node.attr("kernel_shape")
    if kernel is None:
        raise ctx.error("kernel_shape is required")
    ceil_mode = bool(node.attr("ceil_mode", 0))
    win = window(ctx, x_shape[2:], kernel, ceil_mode=ceil_mode)
    if ceil_mode and tuple(ctx.shape(out)[2:]) != win.out:
        # ONNX shape inference keeps a last window that starts in the right padding; onnxruntime drops it.
        raise ctx.error(f"with ceil_mode the last window starts in the trailing pad: ONNX shape inference gives "
                        f"{ctx.shape(out)}, onnxruntime computes {(*x_shape[:2], *win.out)}; the model is ambiguous")
    check_output(ctx, (*x_shape[:2], *win.out), out)
    dims = ("n", "c", *win.out_names, *win.kernel_names)
    domain = ctx.domain(dims, (*x_shape[:2], *win.out, *win.kernel))
    read = ctx.access(domain, dims, x, ["n", "c", *win.input_index()])
    write = ctx.access(domain, dims, out, ["n", "c", *win.out_names])
    elem_ops = math.prod((*x_shape[:2], *win.out, *win.kernel))
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, (read,), (write,), 0, elem_ops,
                      "vector")]


@register("GlobalAveragePool", "GlobalMaxPool")
def lower_global_pool(node: Node, ctx: Context) -> list[Statement]:
    x, out = ctx.input(0), ctx.only_first_output()
    x_shape = ctx.shape(x)
    if len(x_shape) < 3:
        raise ctx.error(f"input {x_shape} must be N x C x spatial")
    names = spatial_names(len(x_shape) - 2)
    check_output(ctx, (*x_shape[:2], *(1,) * len(names)), out)
    dims = ("n", "c", *names)
    domain = ctx.domain(dims, x_shape)
    read = ctx.access(domain, dims, x, dims)
    write = ctx.access(domain, dims, out, ["n", "c", *("0",) * len(names)])
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, (read,), (write,), 0, math.prod(x_shape),
                      "vector")]
