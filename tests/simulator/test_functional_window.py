"""A sliding-window tile run on its crop (`simulator.functional_window`) gives what the whole op gives on that tile.

Random Conv / MaxPool / AveragePool nodes (strides, dilations, asymmetric pads, groups, depthwise) and random output
tiles; the whole input holds data in a random box and poison elsewhere, as the functional simulator builds it, so the
crop must carry the poison through exactly where the whole op does.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulator.functional_window import window
from simulator.isa import Box, Compute, DramTensor, Operand
from simulator.kernels import run_op
from simulator.scratchpad import Poison


def _box(rng: np.random.Generator, shape: tuple[int, ...]) -> Box:
    starts = [int(rng.integers(0, n)) for n in shape]
    return Box(tuple(starts), tuple(int(rng.integers(a + 1, n + 1)) for a, n in zip(starts, shape, strict=True)))


def _case(rng: np.random.Generator, op: str) -> tuple[dict, list[np.ndarray], tuple[int, ...]]:
    rank = int(rng.integers(1, 3))
    kernel = tuple(int(k) for k in rng.integers(1, 4, rank))
    strides = tuple(int(s) for s in rng.integers(1, 3, rank))
    dilations = tuple(int(d) for d in rng.integers(1, 3, rank)) if op == "Conv" else (1,) * rank
    pads = tuple(int(rng.integers(0, k)) for k in kernel * 2)
    spatial = tuple(int(n) for n in rng.integers(4, 9, rank))
    group = int(rng.choice([1, 2, 4])) if op == "Conv" else 1
    channels = group * int(rng.integers(1, 3))
    x = rng.standard_normal((2, channels, *spatial)).astype(np.float32)
    poison = Poison(int(rng.integers(0, 2))).fill(x.shape, "float32")
    loaded = _box(rng, x.shape)
    inside = tuple(slice(a, b) for a, b in zip(loaded.start, loaded.stop, strict=True))
    poison[inside] = x[inside]
    attrs: dict = {"strides": strides, "pads": pads}
    inputs = [poison]
    if op == "Conv":
        attrs |= {"dilations": dilations, "group": group}
        out_channels = group * int(rng.integers(1, 3))
        inputs += [rng.standard_normal((out_channels, channels // group, *kernel)).astype(np.float32),
                   rng.standard_normal(out_channels).astype(np.float32)]
    else:
        attrs["kernel_shape"] = kernel
        if op == "AveragePool":
            attrs["count_include_pad"] = int(rng.integers(0, 2))
    return attrs, inputs, tuple(int(n) for n in loaded.shape)


@pytest.mark.parametrize("op", ["Conv", "MaxPool", "AveragePool"])
def test_a_cropped_tile_equals_the_whole_ops_tile(op: str) -> None:
    rng = np.random.default_rng(7)
    cropped = 0
    for _ in range(60):
        attrs, inputs, _ = _case(rng, op)
        whole = run_op(op, tuple(attrs.items()), 17, inputs, 0, (), "float32")
        tensors = {f"t{i}": DramTensor(f"t{i}", a.shape, "float32", 4, "input") for i, a in enumerate(inputs)}
        tensors["y"] = DramTensor("y", whole.shape, "float32", 4, "output")
        tile = _box(rng, whole.shape)
        if op == "Conv":  # whole groups of output channels, as the planner tiles a grouped conv
            per_group = inputs[1].shape[0] // attrs["group"]
            first = tile.start[1] // per_group * per_group
            tile = Box((tile.start[0], first, *tile.start[2:]),
                       (tile.stop[0], max(first + per_group, -(-tile.stop[1] // per_group) * per_group),
                        *tile.stop[2:]))
        operands = tuple(Operand(f"t{i}", Box.whole(a.shape), "b", (0,) * a.ndim) for i, a in enumerate(inputs))
        compute = Compute(0, (), "vector", "n", op, tuple(attrs.items()), operands, Operand("y", tile, "o", tile.start))
        crop = window(compute, tensors)
        assert crop is not None
        slots = [a if part is None else a[tuple(slice(s, e) for s, e in zip(part.start, part.stop, strict=True))]
                 for a, part in zip(inputs, crop.crops, strict=True)]
        got = run_op(op, crop.attrs, 17, slots, 0, crop.output.shape, "float32")
        got = got[tuple(slice(a - c, b - c) for a, b, c in zip(tile.start, tile.stop, crop.output.start, strict=True))]
        if op == "Conv":  # the same sums as the whole conv's, bit for bit
            np.testing.assert_array_equal(got, whole[tuple(slice(a, b) for a, b in zip(tile.start, tile.stop,
                                                                                       strict=True))])
        expected = whole[tuple(slice(a, b) for a, b in zip(tile.start, tile.stop, strict=True))]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        cropped += int(np.prod(slots[0].shape) < np.prod(inputs[0].shape))
    assert cropped > 20  # the crops really are smaller than the whole input
