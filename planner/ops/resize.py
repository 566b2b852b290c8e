"""Resize and Upsample: nearest, linear and cubic, under every coordinate transformation mode.

Per axis, each output coordinate o maps to an input coordinate x(o) (the ONNX formula of the mode). Nearest copies
one input coordinate, its rounding of x. Linear reads floor(x) and floor(x) + 1, cubic floor(x) - 1 .. floor(x) + 2,
clipped to the axis (onnxruntime clamps taps to the edge, which reads the same elements; its linear kernel also
clamps x into the axis first, so x < 0 reads 0 and 1). The axis relation is then
written as exact affine constraints with integer division, `q*i <= p*o + c < q*(i + 1)` for nearest and
`q1*i > p1*o + c1 - q1 and q2*i <= p2*o + c2` for the interpolating modes, when such a form fits the table (every
integer or rational scale does), else as runs of equal reads.

Linear and cubic footprints are a sound over-approximation, not exact: x(o) is computed in float32 by onnxruntime,
so where x(o) is within rounding of an integer k the footprint takes the taps of both k - 1/2 and k + 1/2 (one index
more than either). A tap with zero weight still counts as read, since 0 * NaN is NaN in every kernel. The footprint
test checks a superset of what onnxruntime reads (`tests/planner/test_resize.py`). An axis of scale 1 that keeps
its extent reads exactly its own coordinate under nearest and outside the last two axes (onnxruntime copies it);
tf_crop_and_resize outputs outside the crop read nothing.
"""

from __future__ import annotations

import math
from fractions import Fraction

import islpy as isl
import numpy as np

from planner.graph import Node
from planner.ops.registry import Context, register
from planner.poly import tensor_set
from planner.stmt import Access, Statement

TAPS = {"linear": 2, "cubic": 4}
ROUNDING_SLACK = 1e-3  # float32 error in x(o), relative to max(1, |x|), widened on both sides


@register("Resize", "Upsample")
def lower_resize(node: Node, ctx: Context) -> list[Statement]:
    source, out = ctx.input(0), ctx.only_first_output()
    in_shape, out_shape = ctx.shape(source), ctx.shape(out)
    if len(in_shape) != len(out_shape):
        raise ctx.error(f"output rank {len(out_shape)} differs from input rank {len(in_shape)}")
    mode = {"bilinear": "linear", "trilinear": "linear"}.get(node.attr("mode", "nearest"), node.attr("mode", "nearest"))
    if mode not in ("nearest", *TAPS):
        raise ctx.error(f"mode {mode!r} is not one of nearest, linear, cubic")
    scales = _scales(node, ctx, in_shape, out_shape)
    legacy = node.op_type == "Upsample" or ctx.graph.opset < 11
    transform = "asymmetric" if legacy else node.attr("coordinate_transformation_mode", "half_pixel")
    if node.attr("keep_aspect_ratio_policy", "stretch") != "stretch":
        raise ctx.error("keep_aspect_ratio_policy other than stretch is not supported")
    if mode != "nearest" and node.attr("antialias", 0) and min(scales) < 1:
        raise ctx.error("antialias=1 when downscaling widens the kernel with the scale; it is not supported")
    roi = _roi(ctx, len(in_shape)) if transform == "tf_crop_and_resize" else [(0.0, 1.0)] * len(in_shape)
    relation = isl.Map("{ [] -> [] }")
    rank = len(in_shape)
    copy = in_shape == out_shape and all(scale == 1 for scale in scales)  # onnxruntime just copies the input
    for position, (n_in, n_out, scale, (start, end)) in enumerate(zip(in_shape, out_shape, scales, roi, strict=True)):
        # onnxruntime copies an unscaled axis outside its 2-D kernels as it is (even under a tf crop); inside them,
        # the last two axes, an unscaled axis is still interpolated (at integer x, with a zero-weight neighbour)
        if n_in == n_out and scale == 1 and (mode == "nearest" or position < rank - 2 or copy):
            axis = isl.Map("{ [o] -> [o] }")
        else:
            unscaled = transform == "tf_crop_and_resize" and n_in == n_out and scale == 1  # onnxruntime skips its roi
            x = coordinates(ctx, n_in, n_out, scale, "asymmetric" if unscaled else transform, start, end)
            if mode == "nearest":
                rounding = "floor" if legacy else node.attr("nearest_mode", "round_prefer_floor")
                table = _nearest(ctx, np.nan_to_num(x), rounding, n_in)
                inside = ~np.isnan(x)
                axis = _range_relation(np.where(inside, table, 1), np.where(inside, table, 0), n_in, n_out, scale)
            else:
                low, high = _taps(x, TAPS[mode], n_in)
                axis = _range_relation(low, high, n_in, n_out, scale)
        relation = relation.flat_product(axis)
    dims = tuple(f"i{axis}" for axis in range(len(out_shape)))
    domain = ctx.domain(dims, out_shape)
    relation = (relation.set_tuple_name(isl.dim_type.in_, domain.get_tuple_name())
                .set_tuple_name(isl.dim_type.out, ctx.space(source)).intersect_domain(domain))
    relation = relation.intersect_range(tensor_set(ctx.space(source), in_shape))
    write = ctx.access(domain, dims, out, list(dims))
    resized = sum(1 for a, b in zip(in_shape, out_shape, strict=True) if a != b)
    work = 1 if mode == "nearest" else 2 * TAPS[mode] ** resized
    return [Statement(ctx.stmt_name(), node.name, node.op_type, dims, domain, (Access(source, relation),), (write,),
                      0, work * math.prod(out_shape), "move" if mode == "nearest" else "vector")]


def coordinates(ctx: Context, n_in: int, n_out: int, scale: float, transform: str, roi_start: float = 0.0,
                roi_end: float = 1.0) -> np.ndarray:
    """x(o) for every output coordinate, as onnxruntime computes it (NaN: outside a tf crop, reads nothing).

    >>> coordinates(None, 4, 8, 2.0, "half_pixel").tolist()[:3]
    [-0.25, 0.25, 0.75]
    """
    o = np.arange(n_out, dtype=np.float64)
    if transform == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if transform == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if n_out > 1 else np.zeros_like(o)
    if transform == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / (scale * n_in))
        return offset + (o + 0.5) / scale - 0.5
    if transform == "align_corners":
        return o * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros_like(o)
    if transform == "asymmetric":
        return o / scale
    if transform == "tf_crop_and_resize":
        if n_out > 1:
            x = roi_start * (n_in - 1) + o * (roi_end - roi_start) * (n_in - 1) / (n_out - 1)
        else:
            x = np.full_like(o, 0.5 * (roi_start + roi_end) * (n_in - 1))
        slack = ROUNDING_SLACK * np.maximum(1, np.abs(x))
        return np.where((x < -slack) | (x > n_in - 1 + slack), np.nan, x)
    raise ctx.error(f"coordinate_transformation_mode {transform!r} is not supported")


def _nearest(ctx: Context, x: np.ndarray, rounding: str, n_in: int) -> np.ndarray:
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


def _taps(x: np.ndarray, taps: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest input coordinate each output reads (low > high: reads nothing), clipped to the axis."""
    inside = ~np.isnan(x)
    x = np.nan_to_num(x)
    # onnxruntime's linear kernel first clamps x into the axis (x < 0 reads 0 and 1), its cubic one does not: take both
    low, high = _tap_range(x, taps)
    low_clamped, high_clamped = _tap_range(np.clip(x, 0, n_in - 1), taps)
    low, high = np.clip(np.minimum(low, low_clamped), 0, n_in - 1), np.clip(np.maximum(high, high_clamped), 0, n_in - 1)
    return np.where(inside, low, 1), np.where(inside, high, 0)


def _tap_range(x: np.ndarray, taps: int) -> tuple[np.ndarray, np.ndarray]:
    slack = ROUNDING_SLACK * np.maximum(1, np.abs(x))
    return (np.floor(x - slack).astype(np.int64) - (taps // 2 - 1), np.floor(x + slack).astype(np.int64) + taps // 2)


def _range_relation(low: np.ndarray, high: np.ndarray, n_in: int, n_out: int, scale: float) -> isl.Map:
    """`{ [o] -> [i] : low[o] <= i <= high[o] }`, affine with integer division where that fits, else runs."""
    ratios = {Fraction(n_in, n_out), Fraction(1 / scale).limit_denominator(256)}
    if n_out > 1 and n_in > 1:
        ratios.add(Fraction(n_in - 1, n_out - 1))
    below, above = _floor_fit(low, ratios), _floor_fit(high, ratios)
    if below and above and np.all(low <= high):
        (p1, q1, c1), (p2, q2, c2) = below, above
        return isl.Map(f"{{ [o] -> [i] : {q1}*i > {p1}*o + {c1 - q1} and {q2}*i <= {p2}*o + {c2} }}")
    starts = np.flatnonzero(np.diff(low, prepend=-1) | np.diff(high, prepend=-1))
    ends = [*starts[1:], n_out]
    runs = [f"[o] -> [i] : {a} <= o < {b} and {low[a]} <= i <= {high[a]}"
            for a, b in zip(starts, ends, strict=True) if low[a] <= high[a]]
    return isl.Map(f"{{ {'; '.join(runs)} }}") if runs else isl.Map("{ [o] -> [i] : 1 = 0 }")


def _floor_fit(table: np.ndarray, ratios: set[Fraction]) -> tuple[int, int, int] | None:
    """(p, q, c) with floor((p*o + c) / q) == table[o] for every o, for p/q one of the ratios (times 1, 2 or 4 over
    the same q, for half-pixel offsets), or None."""
    o = np.arange(len(table), dtype=np.int64)
    for ratio in sorted(ratios):
        for multiple in (1, 2, 4):
            p, q = ratio.numerator * multiple, ratio.denominator * multiple
            # q*t <= p*o + c < q*(t + 1)  <=>  q*t - p*o <= c <= q*t - p*o + q - 1
            lowest, highest = int(np.max(q * table - p * o)), int(np.min(q * table - p * o + q - 1))
            if lowest <= highest:
                return p, q, lowest
    return None


def _scales(node: Node, ctx: Context, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> list[float]:
    if node.op_type == "Upsample" and ctx.graph.opset < 9:
        given = node.attr("scales")
    elif node.op_type == "Upsample" or ctx.graph.opset < 11:
        given = ctx.value(ctx.input(1))
    else:
        given = ctx.value(ctx.input(2)) if ctx.input(2) and ctx.shape(ctx.input(2))[0] else None
    axes = [int(a) % len(in_shape) for a in node.attr("axes", range(len(in_shape)))]
    if given is None or len(given) == 0:  # sizes were given: the scale is what they imply
        return [o / i for o, i in zip(out_shape, in_shape, strict=True)]
    if len(given) != len(axes):
        raise ctx.error(f"{len(given)} scales for {len(axes)} axes")
    scales = [1.0] * len(in_shape)
    for axis, value in zip(axes, given, strict=True):
        scales[axis] = float(np.float32(value))
    return scales


def _roi(ctx: Context, rank: int) -> list[tuple[float, float]]:
    axes = [int(a) % rank for a in ctx.node.attr("axes", range(rank))]
    values = [float(v) for v in ctx.value(ctx.input(1)).reshape(-1)] if ctx.input(1) else []
    if len(values) != 2 * len(axes):
        raise ctx.error(f"tf_crop_and_resize needs an roi of {2 * len(axes)} values, not {len(values)}")
    roi = [(0.0, 1.0)] * rank
    for k, axis in enumerate(axes):
        roi[axis] = (values[k], values[k + len(axes)])
    return roi
