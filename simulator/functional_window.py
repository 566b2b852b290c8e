"""The part of a sliding-window op's inputs that one output tile depends on, by the op's own ONNX definition.

The functional simulator runs each tile's op on whole inputs (filler outside the operand boxes) and keeps the tile.
For a Conv or a pool that is the whole layer's work once per tile. Here the same values come from less work: an
output element of a Conv / MaxPool / AveragePool depends only on its window of the input (ONNX: input position
o * stride - pad_begin + tap * dilation), so the op runs on the crop of the whole input that covers the tile's
windows, with the pads that crop still needs (the real pads where the crop reaches a border, none inside). The crop
is taken from the same whole input: what the tile did not load is filler there too, so a forgotten halo still comes
out as poison. Nothing here comes from the planner: strides, pads and kernels are the node's attributes and shapes.

`window` returns None where the crop does not apply (auto_pad, ceil_mode, MaxPool's indices, views, split
reductions, odd group alignments); the caller then runs the whole op as before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator.isa import Box, Compute, DramTensor, Operand, Param, Unread

WINDOW_OPS = frozenset({"Conv", "MaxPool", "AveragePool"})


@dataclass(frozen=True, slots=True)
class Window:
    """Per input slot, the box of the whole input to feed (None: the slot as it is); the attributes to run with."""

    crops: tuple[Box | None, ...]
    attrs: tuple[tuple[str, Any], ...]
    output: Box  # the box of the output tensor the cropped op computes; it holds the tile


def window(compute: Compute, tensors: Mapping[str, DramTensor]) -> Window | None:
    """The crop that computes `compute`'s output tile alone, or None where the whole op must run."""
    if compute.op_type not in WINDOW_OPS or compute.slices or compute.output.view or compute.output_index != 0:
        return None
    attrs = dict(compute.attrs)
    if attrs.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID") or int(attrs.get("ceil_mode", 0)):
        return None
    slots = compute.inputs
    if any(isinstance(slot, Unread) for slot in slots):
        return None
    data = slots[0] if slots else None
    if not isinstance(data, Operand) or data.view or data.tensor not in tensors:
        return None
    shape = tensors[data.tensor].shape
    rank = len(shape) - 2
    out = compute.output.box
    if rank < 1 or len(out.start) != rank + 2:
        return None
    conv = compute.op_type == "Conv"
    weights = slots[1] if conv and len(slots) > 1 else None
    if conv:
        if not isinstance(weights, Operand) or weights.view or weights.tensor not in tensors:
            return None
        kernel = tuple(tensors[weights.tensor].shape[2:])
    else:
        kernel = tuple(attrs.get("kernel_shape", ()))
    strides = tuple(attrs.get("strides", (1,) * rank))
    dilations = tuple(attrs.get("dilations", (1,) * rank))
    pads = tuple(attrs.get("pads", (0,) * (2 * rank))) if attrs.get("auto_pad", "NOTSET") == "NOTSET" \
        else (0,) * (2 * rank)
    if not len(kernel) == len(strides) == len(dilations) == rank or len(pads) != 2 * rank:
        return None
    # A Conv keeps every output position: onnxruntime's GEMM picks its reduction blocks by the number of output
    # positions, so a spatial crop would round differently from the reference's whole conv, and the difference
    # would grow layer by layer. Output channels (the GEMM's rows) and images crop without changing a sum.
    if compute.output.tensor not in tensors:
        return None
    whole = tensors[compute.output.tensor].shape
    spatial_out = [(0, whole[axis + 2]) if conv else (out.start[axis + 2], out.stop[axis + 2])
                   for axis in range(rank)]
    lows, highs, begins, ends = [], [], [], []
    for axis in range(rank):
        o0, o1 = spatial_out[axis]
        first = o0 * strides[axis] - pads[axis]
        last = (o1 - 1) * strides[axis] - pads[axis] + (kernel[axis] - 1) * dilations[axis] + 1
        low, high = max(0, first), min(shape[axis + 2], last)
        if high <= low:
            return None  # a tile of padding alone
        lows.append(low)
        highs.append(high)
        begins.append(low - first)
        ends.append(last - high)
    batch = (out.start[0], out.stop[0])
    channels = (out.start[1], out.stop[1])
    crops: list[Box | None] = [None] * len(slots)
    if conv:
        group = int(attrs.get("group", 1))
        per_group = tensors[weights.tensor].shape[0] // group  # type: ignore[union-attr]
        inner = tensors[weights.tensor].shape[1]  # type: ignore[union-attr]
        if channels[0] % per_group or channels[1] % per_group:
            return None
        first_group, last_group = channels[0] // per_group, channels[1] // per_group
        in_channels = (first_group * inner, last_group * inner) if group > 1 else (0, shape[1])
        attrs["group"] = last_group - first_group if group > 1 else 1
        weight_shape = tensors[weights.tensor].shape  # type: ignore[union-attr]
        crops[1] = Box((channels[0], *(0 for _ in weight_shape[1:])), (channels[1], *weight_shape[1:]))
        if len(slots) > 2:
            bias = slots[2]
            if isinstance(bias, Param):
                return None  # a by-value bias cannot be cropped here; rare
            if isinstance(bias, Operand):
                if bias.view:
                    return None
                crops[2] = Box((channels[0],), (channels[1],))
        if any(isinstance(slot, Operand) and slot.view for slot in slots[3:]) or len(slots) > 3:
            return None
    else:
        in_channels = channels
    crops[0] = Box((batch[0], in_channels[0], *lows), (batch[1], in_channels[1], *highs))
    attrs["pads"] = (*begins, *ends)
    if "auto_pad" in attrs:
        attrs["auto_pad"] = "NOTSET"
    output = Box((batch[0], channels[0], *(a for a, _ in spatial_out)),
                 (batch[1], channels[1], *(b for _, b in spatial_out)))
    return Window(tuple(crops), tuple(attrs.items()), output)
