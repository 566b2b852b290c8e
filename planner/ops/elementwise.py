"""Elementwise ops with numpy broadcasting: one domain point per output element.

An input dim of extent 1 facing a larger output dim is read at index 0; missing leading dims are not read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from planner.graph import Node
from planner.ops.registry import Context, register
from planner.stmt import Statement

UNARY = ("Sqrt", "Exp", "Neg", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Erf", "Gelu", "HardSigmoid", "HardSwish",
         "Cast", "Clip", "Softplus", "Mish", "Abs", "Log", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Elu",
         "Selu", "Softsign", "Sin", "Cos", "IsNaN", "IsInf")
BINARY = ("Add", "Sub", "Mul", "Div", "Pow")
VARIADIC = ("Min", "Max", "Sum", "Mean")


def broadcast_index(ctx: Context, tensor: str, out_shape: Sequence[int], dims: Sequence[str]) -> list[str]:
    """Index expressions reading `tensor` broadcast to `out_shape` (numpy rules).

    An input of shape (3, 1) under an output (2, 3, 4) with dims i0, i1, i2 reads [i1, 0].
    """
    shape = ctx.shape(tensor)
    offset = len(out_shape) - len(shape)
    if offset < 0:
        raise ctx.error(f"input {tensor!r} of shape {shape} has more dims than the output {tuple(out_shape)}")
    index = []
    for axis, extent in enumerate(shape):
        if extent == out_shape[axis + offset]:
            index.append(dims[axis + offset])
        elif extent == 1:
            index.append("0")
        else:
            raise ctx.error(f"input {tensor!r} of shape {shape} does not broadcast to {tuple(out_shape)}")
    return index


@register(*UNARY, *BINARY, *VARIADIC)
def lower_elementwise(node: Node, ctx: Context) -> list[Statement]:
    out = ctx.only_first_output()
    shape = ctx.shape(out)
    dims = [f"i{axis}" for axis in range(len(shape))]
    domain = ctx.domain(dims, shape)
    inputs = [name for name in node.inputs if name]
    reads = tuple(ctx.access(domain, dims, name, broadcast_index(ctx, name, shape, dims)) for name in inputs)
    write = ctx.access(domain, dims, out, dims)
    elem_ops = math.prod(shape) * max(1, len(inputs) - 1)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, tuple(dims), domain, reads, (write,), 0, elem_ops,
                      "vector")]
