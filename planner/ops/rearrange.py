"""DepthToSpace, SpaceToDepth and Tile: copies whose index maps need integer division and remainders.

isl takes `floor(o / b)` and `o mod b` for a constant b, so each is one exact affine relation with integer
division. For DepthToSpace (DCR) with block b and C' = C / b^2 output channels:
`{ S[n, c, y, x] -> X[n, (b * (y mod b) + (x mod b)) * C' + c, floor(y / b), floor(x / b)] }`.
"""

from __future__ import annotations

import math

from planner.graph import Node
from planner.ops.registry import Context, register
from planner.ops.window import check_output
from planner.stmt import Statement


def _copy(node: Node, ctx: Context, source: str, index: list[str], extents: tuple[int, ...]) -> list[Statement]:
    out = ctx.only_first_output()
    check_output(ctx, extents, out)
    dims = [f"i{axis}" for axis in range(len(extents))]
    domain = ctx.domain(dims, extents)
    read = ctx.access(domain, dims, source, index)
    write = ctx.access(domain, dims, out, dims)
    return [Statement(ctx.stmt_name(), node.name, node.op_type, tuple(dims), domain, (read,), (write,), 0,
                      math.prod(extents), "move")]


def _four_dims(ctx: Context, x: str, block: int) -> tuple[int, int, int, int]:
    shape = ctx.shape(x)
    if len(shape) != 4 or block <= 0:
        raise ctx.error(f"input {shape} must be N x C x H x W and blocksize {block} positive")
    n, c, h, w = shape
    return n, c, h, w


@register("DepthToSpace")
def lower_depth_to_space(node: Node, ctx: Context) -> list[Statement]:
    x, b = ctx.input(0), int(node.attr("blocksize", 0))
    n, c, h, w = _four_dims(ctx, x, b)
    if c % (b * b):
        raise ctx.error(f"{c} channels do not split into blocks of {b}x{b}")
    channels = c // (b * b)
    i0, i1, i2, i3 = (f"i{axis}" for axis in range(4))
    within = f"{b}*({i2} mod {b}) + ({i3} mod {b})"
    dcr = node.attr("mode", "DCR") == "DCR"  # else CRD
    channel = f"({within})*{channels} + {i1}" if dcr else f"{i1}*{b * b} + {within}"
    return _copy(node, ctx, x, [i0, channel, f"floor({i2}/{b})", f"floor({i3}/{b})"], (n, channels, h * b, w * b))


@register("SpaceToDepth")
def lower_space_to_depth(node: Node, ctx: Context) -> list[Statement]:
    x, b = ctx.input(0), int(node.attr("blocksize", 0))
    n, c, h, w = _four_dims(ctx, x, b)
    if h % b or w % b:
        raise ctx.error(f"spatial dims {h}x{w} do not split into blocks of {b}")
    i0, i1, i2, i3 = (f"i{axis}" for axis in range(4))
    block = f"floor({i1}/{c})"  # which of the b*b positions of a block, row-major
    index = [i0, f"{i1} mod {c}", f"{i2}*{b} + floor({block}/{b})", f"{i3}*{b} + ({block} mod {b})"]
    return _copy(node, ctx, x, index, (n, c * b * b, h // b, w // b))


@register("Tile")
def lower_tile(node: Node, ctx: Context) -> list[Statement]:
    x = ctx.input(0)
    shape = ctx.shape(x)
    repeats = [int(v) for v in ctx.value(ctx.input(1)).reshape(-1)]
    if len(repeats) != len(shape) or any(r < 0 for r in repeats):
        raise ctx.error(f"repeats {repeats} do not fit an input of rank {len(shape)}")
    index = [f"i{axis} mod {extent}" if repeat > 1 else f"i{axis}"
             for axis, (extent, repeat) in enumerate(zip(shape, repeats, strict=True))]
    extents = tuple(extent * repeat for extent, repeat in zip(shape, repeats, strict=True))
    if not math.prod(extents):
        raise ctx.error(f"repeats {repeats} leave an empty output")
    return _copy(node, ctx, x, index, extents)
