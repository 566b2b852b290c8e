"""Resize and Upsample in nearest mode: each output coordinate copies one input coordinate per axis.

The per-axis index table follows the ONNX coordinate transformation and nearest rounding; it is then written as one
affine relation q*i <= p*o + c < q*(i + 1) when one fits (every integer or rational scale does), else as runs.
"""

from __future__ import annotations

import math

import islpy as isl
import numpy as np

from planner.graph import Node
from planner.ops.registry import Context, register
from planner.stmt import Access, Statement


@register("Resize", "Upsample")
def lower_resize(node: Node, ctx: Context) -> list[Statement]:
    source, out = ctx.input(0), ctx.only_first_output()
    in_shape, out_shape = ctx.shape(source), ctx.shape(out)
    if len(in_shape) != len(out_shape):
        raise ctx.error(f"output rank {len(out_shape)} differs from input rank {len(in_shape)}")
    mode = node.attr("mode", "nearest")
    if mode != "nearest":
        raise ctx.error(f"mode {mode!r}: only nearest is supported")
    scales = _scales(node, ctx, in_shape, out_shape)
    if node.op_type == "Upsample" or ctx.graph.opset < 11:
        transform, rounding = "asymmetric", "floor"
    else:
        transform = node.attr("coordinate_transformation_mode", "half_pixel")
        rounding = node.attr("nearest_mode", "round_prefer_floor")
    relation = isl.Map("{ [] -> [] }")
    for n_in, n_out, scale in zip(in_shape, out_shape, scales, strict=True):
        table = _index_table(ctx, n_in, n_out, scale, transform, rounding)
        relation = relation.flat_product(_table_relation(table, n_in))
    dims = tuple(f"i{axis}" for axis in range(len(out_shape)))
    domain = ctx.domain(dims, out_shape)
    relation = (relation.set_tuple_name(isl.dim_type.in_, domain.get_tuple_name())
                .set_tuple_name(isl.dim_type.out, ctx.space(source)).intersect_domain(domain))
    write = ctx.access(domain, dims, out, list(dims))
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, (Access(source, relation),), (write,),
                      0, math.prod(out_shape), "move")]


def _scales(node: Node, ctx: Context, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[float]:
    if node.op_type == "Upsample" and ctx.graph.opset < 9:
        given = node.attr("scales")
    elif node.op_type == "Upsample" or ctx.graph.opset < 11:
        given = ctx.value(ctx.input(1))
    else:
        given = ctx.value(ctx.input(2)) if ctx.input(2) and ctx.shape(ctx.input(2))[0] else None
    if given is None or len(given) == 0:  # sizes were given: the scale is what they imply
        return [o / i for o, i in zip(out_shape, in_shape, strict=True)]
    if len(given) != len(in_shape):
        raise ctx.error(f"{len(given)} scales for rank {len(in_shape)}")
    return [float(s) for s in given]


def _index_table(ctx: Context, n_in: int, n_out: int, scale: float, transform: str, rounding: str) -> np.ndarray:
    o = np.arange(n_out, dtype=np.float64)
    if transform == "half_pixel":
        x = (o + 0.5) / scale - 0.5
    elif transform == "pytorch_half_pixel":
        x = (o + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(o)
    elif transform == "align_corners":
        x = o * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(o)
    elif transform == "asymmetric":
        x = o / scale
    else:
        raise ctx.error(f"coordinate_transformation_mode {transform!r} is not supported with nearest")
    if rounding == "round_prefer_floor":
        index = np.where(x - np.floor(x) == 0.5, np.floor(x), np.round(x))
    elif rounding == "round_prefer_ceil":
        index = np.floor(x + 0.5)
    elif rounding == "floor":
        index = np.floor(x)
    elif rounding == "ceil":
        index = np.ceil(x)
    else:
        raise ctx.error(f"nearest_mode {rounding!r} is not supported")
    return np.clip(index, 0, n_in - 1).astype(np.int64)


def _table_relation(table: np.ndarray, n_in: int) -> isl.Map:
    n_out = len(table)
    o = np.arange(n_out)
    unit = math.gcd(n_in, n_out)
    for multiple in (1, 2):
        p, q = n_in // unit * multiple, n_out // unit * multiple
        for c in range(-2 * q, 2 * q):
            if np.array_equal((p * o + c) // q, table):
                return isl.Map(f"{{ [o] -> [i] : {q}*i <= {p}*o + {c} < {q}*i + {q} }}")
    starts = np.flatnonzero(np.diff(table, prepend=-1))
    ends = [*starts[1:], n_out]
    runs = [f"[o] -> [{table[a]}] : {a} <= o < {b}" for a, b in zip(starts, ends, strict=True)]
    return isl.Map(f"{{ {'; '.join(runs)} }}")
