"""The layers `planner.testing.onnx_models` grows graphs from: each builds one op on a tensor that exists (and maybe
another) of a model under construction (`planner.testing.builder`), with attributes drawn to fit its shape, or returns
None when it does not fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

from planner.testing.builder import IR_VERSION, MAX_ELEMENTS, OPSET, Draw, _Graph

__all__ = ["IR_VERSION", "LAYERS", "MAX_ELEMENTS", "MAX_LAYERS", "OPSET", "Draw", "_Graph"]

MAX_LAYERS = 8

# -- layers: each builds one op on tensor `x` (and maybe another tensor), or returns None when it does not fit -------

Layer = Callable[[Draw, _Graph, str], object]


def _unary(draw: Draw, g: _Graph, x: str) -> object:
    return g.add(draw(st.sampled_from(["Relu", "Sigmoid", "Tanh"])), [x])


def _spatial_window(draw: Draw, extent: int, *, pooling: bool) -> tuple[int, int, int, int, int]:
    """(kernel, stride, dilation, pad_begin, pad_end) along one axis with an output extent >= 1. onnxruntime wants a
    pool's pads smaller than its kernel."""
    dilation = draw(st.integers(1, 2)) if not pooling else 1
    if pooling:
        kernel = draw(st.integers(1, min(3, extent + 2)))
        begin = draw(st.integers(0, min(2, kernel - 1)))
        end = draw(st.integers(0, min(2, kernel - 1)))
        if kernel > extent + begin + end:
            kernel = extent + begin + end
    else:
        begin, end = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        kernel = draw(st.integers(1, min(3, (extent + begin + end - 1) // dilation + 1)))
    stride = draw(st.integers(1, 3))
    return kernel, stride, dilation, begin, end


def _conv(draw: Draw, g: _Graph, x: str) -> object:
    _, channels, *spatial = g.shapes[x]
    group = draw(st.sampled_from([d for d in range(1, channels + 1) if channels % d == 0]))
    out_channels = group * draw(st.integers(1, max(1, 8 // group)))
    windows = [_spatial_window(draw, extent, pooling=False) for extent in spatial]
    kernel = [w[0] for w in windows]
    attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": [w[1] for w in windows],
                                "dilations": [w[2] for w in windows],
                                "pads": [w[3] for w in windows] + [w[4] for w in windows]}
    if group > 1:
        attrs["group"] = group
    fan_in = channels // group * math.prod(kernel)
    inputs = [x, g.weight("w", [out_channels, channels // group, *kernel], fan_in)]
    if draw(st.booleans()):
        inputs.append(g.weight("b", [out_channels]))
    return g.add("Conv", inputs, **attrs)


def _pool(draw: Draw, g: _Graph, x: str) -> object:
    op_type = draw(st.sampled_from(["MaxPool", "AveragePool", "GlobalAveragePool"]))
    if op_type == "GlobalAveragePool":
        return g.add(op_type, [x])
    spatial = g.shapes[x][2:]
    windows = [_spatial_window(draw, extent, pooling=True) for extent in spatial]
    attrs: dict[str, Any] = {"kernel_shape": [w[0] for w in windows], "strides": [w[1] for w in windows],
                                "pads": [w[3] for w in windows] + [w[4] for w in windows]}
    if op_type == "AveragePool" and draw(st.booleans()):
        attrs["count_include_pad"] = 1
    if draw(st.booleans()):
        # ceil_mode, unless its last window would start in the trailing pad: ONNX shape inference and onnxruntime
        # disagree there, and the planner rightly refuses such a model.
        ambiguous = False
        for extent, (kernel, stride, _, begin, end) in zip(spatial, windows, strict=True):
            room = extent + begin + end - kernel
            ceil_extent = -(-room // stride) + 1
            ambiguous |= (ceil_extent - 1) * stride >= extent + begin
        if not ambiguous:
            attrs["ceil_mode"] = 1
    return g.add(op_type, [x], **attrs)


def _batch_norm(draw: Draw, g: _Graph, x: str) -> object:
    channels = g.shapes[x][1]
    scale, bias, mean = (g.weight(prefix, [channels]) for prefix in ("scale", "shift", "mean"))
    var = g.constant("var", g.rng.uniform(0.5, 1.5, channels).astype(np.float32))
    return g.add("BatchNormalization", [x, scale, bias, mean, var], epsilon=draw(st.sampled_from([1e-5, 1e-3])))


def _binary_constant(draw: Draw, g: _Graph, x: str) -> object:
    shape = g.shapes[x]
    op_type = draw(st.sampled_from(["Add", "Mul", "Sub"]))
    kind = draw(st.sampled_from(["channel", "scalar", "last"] if len(shape) >= 3 else ["scalar", "last"]))
    constant_shape = {"channel": [shape[-3], 1, 1] if kind == "channel" else [], "scalar": [],
                      "last": [shape[-1]]}[kind]
    constant = g.weight("k", constant_shape)
    return g.add(op_type, [constant, x] if draw(st.booleans()) else [x, constant])


def _binary(draw: Draw, g: _Graph, x: str) -> object:
    """A residual Add (or Mul, Sub) of two tensors, the second broadcasting into the first (x itself included)."""
    shape = g.shapes[x]
    partners = [t for t in reversed(g.shapes) if _broadcasts_into(g.shapes[t], shape)]
    other = partners[draw(st.integers(0, len(partners) - 1))]
    op_type = draw(st.sampled_from(["Add", "Mul", "Sub"]))
    return g.add(op_type, [other, x] if draw(st.booleans()) else [x, other])


def _broadcasts_into(small: tuple[int, ...], big: tuple[int, ...]) -> bool:
    return len(small) <= len(big) and all(s in (1, b) for s, b in zip(small[::-1], big[::-1], strict=False))


def _concat(draw: Draw, g: _Graph, x: str) -> object:
    shape = g.shapes[x]
    axis = draw(st.integers(0, len(shape) - 1))
    partners = [t for t in reversed(g.shapes) if len(g.shapes[t]) == len(shape)
                and all(a == b for i, (a, b) in enumerate(zip(g.shapes[t], shape, strict=True)) if i != axis)]
    others = [partners[draw(st.integers(0, len(partners) - 1))] for _ in range(draw(st.integers(1, 2)))]
    return g.add("Concat", [x, *others], axis=axis - len(shape) if draw(st.booleans()) else axis)


def _split(draw: Draw, g: _Graph, x: str) -> object:
    shape = g.shapes[x]
    axes = [axis for axis, extent in enumerate(shape) if extent >= 2]
    if not axes:
        return None
    axis = draw(st.sampled_from(axes))
    first = draw(st.integers(1, shape[axis] - 1))
    sizes = [first, shape[axis] - first]
    if sizes[1] >= 2 and draw(st.booleans()):
        second = draw(st.integers(1, sizes[1] - 1))
        sizes = [first, second, shape[axis] - first - second]
    return g.add("Split", [x, g.ints("split", sizes)], outputs=len(sizes), axis=axis)


def _slice(draw: Draw, g: _Graph, x: str) -> object:
    shape = g.shapes[x]
    axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, max_size=len(shape), unique=True))
    starts, ends, steps = [], [], []
    for axis in axes:
        extent = shape[axis]
        step = draw(st.sampled_from([1, 2, -1, -2, 3]))
        start = draw(st.integers(-extent - 1, extent + 1))
        end = draw(st.integers(-extent - 1, extent + 1))
        if not len(range(extent)[start:end:step]):
            start, end = (0, extent) if step > 0 else (extent - 1, -extent - 1)
        starts.append(start)
        ends.append(end)
        steps.append(step)
    inputs = [x, g.ints("starts", starts), g.ints("ends", ends), g.ints("axes", axes)]
    if any(step != 1 for step in steps) or draw(st.booleans()):
        inputs.append(g.ints("steps", steps))
    return g.add("Slice", inputs)


def _pad(draw: Draw, g: _Graph, x: str) -> object:
    shape = g.shapes[x]
    mode = draw(st.sampled_from(["constant", "edge", "reflect"]))
    low = {"constant": -1, "edge": 0, "reflect": 0}[mode]
    pads = []
    for side in range(2):
        for extent in shape:
            high = min(2, extent - 1) if mode == "reflect" else 2
            pad = draw(st.integers(low, high))
            pads.append(max(pad, 1 - extent) if side == 0 else pad)
    rank = len(shape)
    for axis in range(rank):  # a negative pad crops; keep at least one element
        while shape[axis] + pads[axis] + pads[axis + rank] < 1:
            pads[axis + rank] += 1
    inputs = [x, g.ints("pads", pads)]
    if mode == "constant" and draw(st.booleans()):
        inputs.append(g.constant("value", np.array(draw(st.sampled_from([0.5, -1.0])), dtype=np.float32)))
    return g.add("Pad", inputs, mode=mode)


def _transpose(draw: Draw, g: _Graph, x: str) -> object:
    rank = len(g.shapes[x])
    return g.add("Transpose", [x], perm=draw(st.permutations(range(rank))))


def _reshape(draw: Draw, g: _Graph, x: str) -> object:
    shape = g.shapes[x]
    if draw(st.booleans()):
        return g.add("Flatten", [x], axis=draw(st.integers(0, len(shape))))
    remaining, target = math.prod(shape), []
    for _ in range(draw(st.integers(0, 3))):
        factor = draw(st.sampled_from([d for d in range(1, remaining + 1) if remaining % d == 0]))
        target.append(factor)
        remaining //= factor
    target.append(remaining)
    if draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return g.add("Reshape", [x, g.ints("shape", target)])


def _softmax(draw: Draw, g: _Graph, x: str) -> object:
    rank = len(g.shapes[x])
    return g.add("Softmax", [x], axis=draw(st.integers(-rank, rank - 1)))


def _gemm(draw: Draw, g: _Graph, x: str) -> object:
    rows, cols = g.shapes[x]
    trans_a, trans_b = draw(st.booleans()), draw(st.booleans())
    m, k = (cols, rows) if trans_a else (rows, cols)
    n = draw(st.integers(1, 16))
    inputs = [x, g.weight("w", [n, k] if trans_b else [k, n], k)]
    bias = draw(st.sampled_from(["none", "row", "vector", "full", "scalar"]))
    if bias != "none":
        inputs.append(g.weight("c", {"row": [1, n], "vector": [n], "full": [m, n], "scalar": []}[bias]))
    attrs: dict[str, Any] = {"transA": int(trans_a), "transB": int(trans_b)}
    if draw(st.booleans()):
        attrs |= {"alpha": 0.5, "beta": 2.0}
    return g.add("Gemm", inputs, **attrs)


def _matmul(draw: Draw, g: _Graph, x: str) -> object:
    shape = g.shapes[x]
    partners = [t for t in reversed(g.shapes) if len(g.shapes[t]) >= 2 and g.shapes[t][-2] == shape[-1]
                and _batch_broadcasts(g.shapes[t][:-2], shape[:-2])]
    pair = draw(st.booleans()) if partners else False  # activation @ activation, as in attention
    if pair:
        return g.add("MatMul", [x, partners[draw(st.integers(0, len(partners) - 1))]])
    n = draw(st.integers(1, 16))
    return g.add("MatMul", [x, g.weight("w", [shape[-1], n], shape[-1])])


def _batch_broadcasts(first: tuple[int, ...], second: tuple[int, ...]) -> bool:
    return all(a == b or 1 in (a, b) for a, b in zip(first[::-1], second[::-1], strict=False))


@dataclass(frozen=True)
class _Kind:
    build: Layer
    ranks: tuple[int, ...]  # ranks of x the layer accepts
    weight: int = 1  # how often it is drawn, relative to the others


LAYERS: dict[str, _Kind] = {  # Relu first: hypothesis shrinks a layer towards the first kind
    "unary": _Kind(_unary, (1, 2, 3, 4)),
    "conv": _Kind(_conv, (3, 4), weight=3),  # windows and halos are where tiling goes wrong
    "pool": _Kind(_pool, (3, 4), weight=2),
    "batch_norm": _Kind(_batch_norm, (2, 3, 4)),
    "binary_constant": _Kind(_binary_constant, (1, 2, 3, 4)),
    "binary": _Kind(_binary, (1, 2, 3, 4)),
    "concat": _Kind(_concat, (1, 2, 3, 4)),
    "split": _Kind(_split, (1, 2, 3, 4)),
    "slice": _Kind(_slice, (1, 2, 3, 4)),
    "pad": _Kind(_pad, (1, 2, 3, 4)),
    "transpose": _Kind(_transpose, (2, 3, 4)),
    "reshape": _Kind(_reshape, (1, 2, 3, 4)),
    "softmax": _Kind(_softmax, (1, 2, 3, 4)),
    "gemm": _Kind(_gemm, (2,)),
    "matmul": _Kind(_matmul, (2, 3, 4)),
}


