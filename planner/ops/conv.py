"""Conv and ConvTranspose (grouped and depthwise included), lowered over output points times the reduction.

Conv domain: S[n, g, k, y, x, c, ky, kx] where g is the group, k the output channel within it, c the input channel
within it. Reads beyond the input's bounds are padding and touch nothing. ConvTranspose keeps the output-centric
domain and reads the input point i with s*i = o + pad - d*r; its MACs count only the pairs where such an i exists.
"""

from __future__ import annotations

import math

import islpy as isl

from planner.graph import Node
from planner.ops.registry import Context, register
from planner.ops.window import check_output, spatial_names, window
from planner.poly import count
from planner.stmt import Statement


def _grouping(ctx: Context, channels_in: int, weight_channels: int, group: int) -> int:
    if group <= 0:
        raise ctx.error(f"group {group} must be positive")
    if channels_in != weight_channels * group:
        raise ctx.error(f"input has {channels_in} channels but the weights expect {weight_channels} x group {group}"
                        f" = {weight_channels * group}")
    return channels_in // group


@register("Conv")
def lower_conv(node: Node, ctx: Context) -> list[Statement]:
    x, w, bias, out = ctx.input(0), ctx.input(1), ctx.input(2), ctx.only_first_output()
    x_shape, w_shape = ctx.shape(x), ctx.shape(w)
    if len(x_shape) < 3 or len(w_shape) != len(x_shape):
        raise ctx.error(f"input {x_shape} and weights {w_shape} must both be N x C x spatial")
    group = int(node.attr("group", 1))
    cg = _grouping(ctx, x_shape[1], w_shape[1], group)
    if w_shape[0] % group:
        raise ctx.error(f"{w_shape[0]} output channels do not split into {group} groups")
    kg = w_shape[0] // group
    kernel = tuple(node.attr("kernel_shape", w_shape[2:]))
    if kernel != tuple(w_shape[2:]):
        raise ctx.error(f"kernel_shape {list(kernel)} does not match the weights {w_shape}")
    win = window(ctx, x_shape[2:], kernel)
    check_output(ctx, (x_shape[0], w_shape[0], *win.out), out)
    dims = ("n", "g", "k", *win.out_names, "c", *win.kernel_names)
    extents = (x_shape[0], group, kg, *win.out, cg, *kernel)
    domain = ctx.domain(dims, extents)
    channel_out = f"{kg}*g + k"
    reads = [ctx.access(domain, dims, x, ["n", f"{cg}*g + c", *win.input_index()]),
             ctx.access(domain, dims, w, [channel_out, "c", *win.kernel_names])]
    if bias:
        reads.append(ctx.access(domain, dims, bias, [channel_out]))
    write = ctx.access(domain, dims, out, ["n", channel_out, *win.out_names])
    return [Statement(ctx.stmt_name(), node.name, "Conv", dims, domain, tuple(reads), (write,), math.prod(extents), 0,
                      "tensor")]  # the domain is a box: its points are the product of its extents


@register("ConvTranspose")
def lower_conv_transpose(node: Node, ctx: Context) -> list[Statement]:
    x, w, bias, out = ctx.input(0), ctx.input(1), ctx.input(2), ctx.only_first_output()
    x_shape, w_shape = ctx.shape(x), ctx.shape(w)
    if len(x_shape) < 3 or len(w_shape) != len(x_shape):
        raise ctx.error(f"input {x_shape} and weights {w_shape} must both be N x C x spatial")
    rank = len(x_shape) - 2
    group = int(node.attr("group", 1))
    if w_shape[0] != x_shape[1]:
        raise ctx.error(f"input has {x_shape[1]} channels but the weights expect {w_shape[0]}")
    cg = _grouping(ctx, x_shape[1], w_shape[0] // group if w_shape[0] % group == 0 else -1, group)
    kg = w_shape[1]
    kernel = tuple(node.attr("kernel_shape", w_shape[2:]))
    strides = tuple(node.attr("strides", (1,) * rank))
    dilations = tuple(node.attr("dilations", (1,) * rank))
    if any(v <= 0 for v in (*strides, *dilations, *kernel)):
        raise ctx.error(f"strides {list(strides)}, dilations {list(dilations)} and kernel {list(kernel)} must be "
                        "positive")
    begin, out_spatial = _transpose_geometry(node, ctx, x_shape[2:], kernel, strides, dilations)
    check_output(ctx, (x_shape[0], kg * group, *out_spatial), out)
    names = spatial_names(rank)
    kernel_names = tuple(f"k{name}" for name in names)
    inputs = tuple(f"i{name}" for name in names)
    lands = [f"{s}*{i} = {o} + {p} - {d}*{r}" for s, i, o, p, d, r in
             zip(strides, inputs, names, begin, dilations, kernel_names, strict=True)]
    bounds = [f"0 <= {i} < {extent}" for i, extent in zip(inputs, x_shape[2:], strict=True)]
    dims = ("n", "g", "k", *names, "c", *kernel_names)
    # Every (output, kernel) pair is a point, so that every output element is written (some get only the bias);
    # the input is read only where the pair lands on an integer input coordinate.
    domain = ctx.domain(dims, (x_shape[0], group, kg, *out_spatial, cg, *kernel))
    channel_out = f"{kg}*g + k"
    reads = [ctx.access(domain, dims, x, ["n", f"{cg}*g + c", *inputs], extra=" and ".join(lands + bounds)),
             ctx.access(domain, dims, w, [f"{cg}*g + c", "k", *kernel_names])]
    if bias:
        reads.append(ctx.access(domain, dims, bias, [channel_out]))
    write = ctx.access(domain, dims, out, ["n", channel_out, *names])
    # The domain is a product over spatial axes, so count each axis's (o, r) pairs on its own.
    per_axis = [count(isl.Set(f"{{ [o, r] : 0 <= o < {o_ext} and 0 <= r < {k} and exists (i : 0 <= i < {i_ext} and "
                              f"{s}*i = o + {p} - {d}*r) }}"))
                for o_ext, k, i_ext, s, p, d in zip(out_spatial, kernel, x_shape[2:], strides, begin, dilations,
                                                    strict=True)]
    macs = x_shape[0] * group * kg * cg * math.prod(per_axis)
    return [Statement(ctx.stmt_name(), node.name, "ConvTranspose", dims, domain, tuple(reads), (write,), macs, 0,
                      "tensor")]


def _transpose_geometry(node: Node, ctx: Context, spatial: tuple[int, ...], kernel: tuple[int, ...],
                        strides: tuple[int, ...], dilations: tuple[int, ...]) -> tuple[list[int], list[int]]:
    rank = len(spatial)
    output_padding = tuple(node.attr("output_padding", (0,) * rank))
    pads = tuple(node.attr("pads", (0,) * (2 * rank)))
    auto_pad = node.attr("auto_pad", "NOTSET")
    if any(pad < 0 for pad in pads):
        raise ctx.error(f"negative pad in pads={list(pads)}")
    full = [s * (i - 1) + op + (k - 1) * d + 1
            for s, i, op, k, d in zip(strides, spatial, output_padding, kernel, dilations, strict=True)]
    output_shape = node.attr("output_shape")
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = list(output_shape)[-rank:] if output_shape is not None else [
            i * s for i, s in zip(spatial, strides, strict=True)]
        totals = [f - t for f, t in zip(full, target, strict=True)]
        if any(total < 0 for total in totals):
            raise ctx.error(f"output_shape {target} is larger than the transposed convolution produces ({full})")
        begin = [t // 2 if auto_pad == "SAME_UPPER" else t - t // 2 for t in totals]
        return begin, target
    begin, end = list(pads[:rank]), list(pads[rank:])
    out = [f - b - e for f, b, e in zip(full, begin, end, strict=True)]
    if any(extent <= 0 for extent in out):
        raise ctx.error(f"pads {list(pads)} leave no output ({out})")
    return begin, out
