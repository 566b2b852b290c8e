"""Quantization ops: QuantizeLinear and DequantizeLinear (per tensor, per axis, blocked), DynamicQuantizeLinear, and
the integer ops MatMulInteger, ConvInteger, QLinearConv and QLinearMatMul.

The integer ops have the access pattern of their float op (`conv.py`, `matmul.py`); their scales and zero points are
small constants taken by value (Params), or, when a DynamicQuantizeLinear computes them, read like any tensor. They
run on the tensor engine at its int8 rate (`simulator.machine.mac_dtype`).

The functional check runs each tile through onnxruntime's own kernel for the integer op and compares it with
onnxruntime running the QDQ file as written (unfused). Integers compare exactly (tolerance 0): the int32
accumulation is exact and onnxruntime requantizes with the same float scale product the QDQ graph divides by; a
1-LSB difference would show up as a mismatch naming the tile.

>>> import onnx.parser
>>> from planner.graph import load_graph
>>> from planner.ops import lower
>>> g = load_graph(onnx.parser.parse_model('''<ir_version: 8, opset_import: ["" : 17]>
... g (uint8[2,8] a, uint8[8,4] b) => (int32[2,4] y) { y = MatMulInteger(a, b) }'''))
>>> lower(g).macs
64
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

from planner.graph import Node
from planner.ops.conv import lower_conv
from planner.ops.matmul import lower_matmul
from planner.ops.norm import normalize_axis
from planner.ops.registry import Context, register
from planner.stmt import Access, Statement

# Integer op -> (the float op whose access pattern it has, its data inputs in that op's order, its other inputs).
INTEGER_OPS: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {
    "QLinearConv": ("Conv", (0, 3, 8), (1, 2, 4, 5, 6, 7)),
    "QLinearMatMul": ("MatMul", (0, 3), (1, 2, 4, 5, 6, 7)),
    "ConvInteger": ("Conv", (0, 1), (2, 3)),
    "MatMulInteger": ("MatMul", (0, 1), (2, 3)),
}


@register("QuantizeLinear", "DequantizeLinear")
def lower_quantize(node: Node, ctx: Context) -> list[Statement]:
    x, scale, zero_point, out = ctx.input(0), ctx.input(1), ctx.input(2), ctx.only_first_output()
    shape = ctx.shape(x)
    dims = [f"i{axis}" for axis in range(len(shape))]
    domain = ctx.domain(dims, shape)
    index = _scale_index(node, ctx, scale, shape, dims)
    reads = [ctx.access(domain, dims, x, dims)]
    reads += [ctx.access(domain, dims, name, index) for name in (scale, zero_point) if _is_read(ctx, name)]
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, tuple(dims), domain, tuple(reads), (write,), 0,
                      2 * math.prod(shape), "vector")]


@register("DynamicQuantizeLinear")
def lower_dynamic_quantize(node: Node, ctx: Context) -> list[Statement]:
    """Up to three statements, one per output read: the scale and the zero point reduce all of x; y reads all of x
    for every element (its scale depends on x's range), so a tile of y holds the whole input. That is only how a
    small one plans: `planner.dynamic_quant` rewrites a larger one into stages that tile, whose last is one of these
    reading the partial ranges, its y unread."""
    x = ctx.input(0)
    shape = ctx.shape(x)
    dims = [f"i{axis}" for axis in range(len(shape))]
    everything = [f"j{axis}" for axis in range(len(shape))]
    statements = []
    for part, out in enumerate(node.outputs):
        if not out or out not in ctx.used:
            continue
        domain = ctx.domain(dims, shape, part=part)
        read = ctx.access(domain, dims, x, everything if part == 0 else dims)
        write = ctx.access(domain, dims, out, dims if part == 0 else [])
        statements.append(Statement(ctx.stmt_name(part), node.name, node.op_type, tuple(dims), domain, (read,),
                                    (write,), 0, (3 if part == 0 else 2) * math.prod(shape), "vector"))
    return statements


@register(*INTEGER_OPS)
def lower_integer(node: Node, ctx: Context) -> list[Statement]:
    float_op, data, others = INTEGER_OPS[node.op_type]
    inputs = tuple(ctx.input(i) for i in data)
    if not all(inputs[:2]):
        raise ctx.error("both data inputs are required")
    as_float = Node(node.name, node.op_type, inputs, node.outputs, node.attrs)
    lowering = lower_conv if float_op == "Conv" else lower_matmul
    (stmt,) = lowering(as_float, dataclasses.replace(ctx, node=as_float))
    assert isinstance(stmt, Statement)  # conv and matmul lower to one statement
    # Scales and zero points computed at run time (DynamicQuantizeLinear's) are read whole: they are a few values.
    extra = [_read_whole(ctx, stmt, ctx.input(i)) for i in others if _is_read(ctx, ctx.input(i))]
    return [dataclasses.replace(stmt, op_type=node.op_type, reads=(*stmt.reads, *extra))]


def _is_read(ctx: Context, name: str) -> bool:
    """A scale or zero point is read from the scratchpad unless it is a constant the op takes by value."""
    return bool(name) and name not in ctx.graph.values


def _read_whole(ctx: Context, stmt: Statement, name: str) -> Access:
    return ctx.access(stmt.domain, stmt.dims, name, [f"q{axis}" for axis in range(len(ctx.shape(name)))])


def _scale_index(node: Node, ctx: Context, scale: str, shape: tuple[int, ...], dims: Sequence[str]) -> list[str]:
    """Which scale element each element of x uses: the only one (per tensor), the one of its position on `axis`
    (per axis), or that position's block (opset 21 `block_size`)."""
    scale_shape = ctx.shape(scale)
    if math.prod(scale_shape) == 1 and len(scale_shape) <= 1:
        return ["0"] * len(scale_shape)
    if not shape:
        raise ctx.error(f"scale of shape {scale_shape} for a scalar input")
    axis = normalize_axis(ctx, int(node.attr("axis", 1)), len(shape))
    block = int(node.attr("block_size", 0))
    if block:
        expected = tuple(-(-extent // block) if a == axis else extent for a, extent in enumerate(shape))
        if scale_shape != expected:
            raise ctx.error(f"blocked scale has shape {scale_shape}; block_size {block} on axis {axis} of "
                            f"{shape} needs {expected}")
        return [f"floor({dim}/{block})" if a == axis else dim for a, dim in enumerate(dims)]
    if scale_shape != (shape[axis],):
        raise ctx.error(f"per-axis scale has shape {scale_shape}; axis {axis} of the input {shape} needs "
                        f"({shape[axis]},)")
    return [dims[axis]]
