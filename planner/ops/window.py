"""Sliding-window geometry shared by convolutions and pools: pads, auto_pad, ceil_mode, output extents.

Every attribute is checked here so that a window that makes no shape (zero stride, negative pad, kernel larger than
its padded input) is refused with the node's name rather than producing an empty or negative extent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from planner.ops.registry import Context

SPATIAL_NAMES = {1: ("x",), 2: ("y", "x"), 3: ("z", "y", "x")}


@dataclass(frozen=True, slots=True)
class Window:
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def out_names(self) -> tuple[str, ...]:
        return spatial_names(len(self.kernel))

    @property
    def kernel_names(self) -> tuple[str, ...]:
        return tuple(f"k{name}" for name in self.out_names)

    def input_index(self) -> list[str]:
        """Input coordinate read by output point `o` at kernel offset `r`: s*o + d*r - pad_begin."""
        return [f"{s}*{o} + {d}*{r} - {p}" for s, o, d, r, p in
                zip(self.strides, self.out_names, self.dilations, self.kernel_names, self.pads_begin, strict=True)]


def spatial_names(rank: int) -> tuple[str, ...]:
    return SPATIAL_NAMES.get(rank) or tuple(f"s{axis}" for axis in range(rank))


def window(ctx: Context, spatial: Sequence[int], kernel: Sequence[int], *, ceil_mode: bool = False) -> Window:
    """Resolve a node's window attributes against the input's spatial extents.

    Output extent: floor((in + pads - ((k - 1) * d + 1)) / s) + 1, or ceil under ceil_mode (a window must still
    start inside the input or its leading pad).
    """
    rank = len(spatial)
    node = ctx.node
    strides = tuple(node.attr("strides", (1,) * rank))
    dilations = tuple(node.attr("dilations", (1,) * rank))
    pads = tuple(node.attr("pads", (0,) * (2 * rank)))
    auto_pad = node.attr("auto_pad", "NOTSET")
    kernel = tuple(kernel)
    for name, values, size in (("strides", strides, rank), ("dilations", dilations, rank), ("pads", pads, 2 * rank),
                               ("kernel_shape", kernel, rank)):
        if len(values) != size:
            raise ctx.error(f"{name} has {len(values)} values, the input has {rank} spatial dims")
    for axis in range(rank):
        if strides[axis] <= 0:
            raise ctx.error(f"stride {strides[axis]} along spatial axis {axis}: strides must be positive")
        if dilations[axis] <= 0:
            raise ctx.error(f"dilation {dilations[axis]} along spatial axis {axis}: dilations must be positive")
        if kernel[axis] <= 0:
            raise ctx.error(f"kernel extent {kernel[axis]} along spatial axis {axis} must be positive")
    if any(pad < 0 for pad in pads):
        raise ctx.error(f"negative pad in pads={list(pads)}")
    span = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True))
    out: list[int] = []
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = [-(-size // s) for size, s in zip(spatial, strides, strict=True)]
        totals = [max(0, (o - 1) * s + w - size) for o, s, w, size in zip(out, strides, span, spatial, strict=True)]
        small = [total // 2 for total in totals]
        big = [total - half for total, half in zip(totals, small, strict=True)]
        begin, end = (small, big) if auto_pad == "SAME_UPPER" else (big, small)
    elif auto_pad in ("NOTSET", "VALID"):
        begin = list(pads[:rank]) if auto_pad == "NOTSET" else [0] * rank
        end = list(pads[rank:]) if auto_pad == "NOTSET" else [0] * rank
        for axis in range(rank):
            room = spatial[axis] + begin[axis] + end[axis] - span[axis]
            if room < 0:
                raise ctx.error(f"kernel span {span[axis]} along spatial axis {axis} is larger than the padded input "
                                f"({spatial[axis]} + {begin[axis]} + {end[axis]})")
            extent = (-(-room // strides[axis]) if ceil_mode else room // strides[axis]) + 1
            if ceil_mode and (extent - 1) * strides[axis] >= spatial[axis] + begin[axis]:
                extent -= 1
            out.append(extent)
    else:
        raise ctx.error(f"auto_pad {auto_pad!r} is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID")
    return Window(kernel, strides, dilations, tuple(begin), tuple(end), tuple(out))


def check_output(ctx: Context, expected: Sequence[int], tensor: str) -> None:
    """Our geometry must agree with ONNX shape inference; a disagreement is a model we do not understand."""
    inferred = ctx.shape(tensor)
    if tuple(inferred) != tuple(expected):
        raise ctx.error(f"output {tensor!r} has shape {inferred}, but the attributes give {tuple(expected)}")
