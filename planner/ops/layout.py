"""Layout-only ops become aliases, not copies: the output is the input's bytes seen through another shape.

In a row-major layout every reshape keeps the linear offset of each element, so the view relation is
`{ Out[o] -> In[i] : offset(o) = offset(i) }`, exact for any pair of shapes with the same element count.
"""

from __future__ import annotations

import math

import islpy as isl

from planner.graph import Node
from planner.ops.registry import Context, register
from planner.stmt import Alias


def linear_view(out_space: str, out_shape: tuple[int, ...], in_space: str, in_shape: tuple[int, ...]) -> isl.Map:
    """The relation from each element of a reshaped view to the element of the base it is.

    >>> view = linear_view("V", (2, 6), "X", (2, 3, 2))
    >>> view.intersect_domain(isl.Set("{ V[1, 5] }")).range().is_equal(isl.Set("{ X[1, 2, 1] }"))
    True
    """
    def offset(names: list[str], shape: tuple[int, ...]) -> str:
        strides = [math.prod(shape[axis + 1:]) for axis in range(len(shape))]
        return " + ".join(f"{stride}*{name}" for name, stride in zip(names, strides, strict=True)) or "0"

    outs = [f"o{axis}" for axis in range(len(out_shape))]
    ins = [f"i{axis}" for axis in range(len(in_shape))]
    bounds = [f"0 <= {n} < {e}" for n, e in zip(outs + ins, out_shape + in_shape, strict=True)]
    constraints = " and ".join([f"{offset(outs, out_shape)} = {offset(ins, in_shape)}", *bounds])
    return isl.Map(f"{{ {out_space}[{', '.join(outs)}] -> {in_space}[{', '.join(ins)}] : {constraints} }}")


@register("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout")
def lower_view(node: Node, ctx: Context) -> list[Alias]:
    source, out = ctx.input(0), ctx.only_first_output()
    in_shape, out_shape = ctx.shape(source), ctx.shape(out)
    if math.prod(in_shape) != math.prod(out_shape):
        raise ctx.error(f"output {out_shape} does not hold the {math.prod(in_shape)} elements of input {in_shape}")
    return [Alias(out, source, linear_view(ctx.space(out), out_shape, ctx.space(source), in_shape))]
